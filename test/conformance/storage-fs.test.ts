/**
 * The example storage plugin (plugins/examples/storage-fs) against the storage conformance suite:
 * its own test file, exactly as its package runs it, resolving `sertn/…` through its
 * node_modules/sertn link to this repository.
 */
import '../../plugins/examples/storage-fs/test/conformance.test.ts'
