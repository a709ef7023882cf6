/**
 * Runs arlocal (npm `arlocal`, a local Arweave gateway) in this process, bound to one host only.
 * Plain JavaScript on purpose: `local.ts` starts it with `node` in its own process group, without tsx.
 *
 * Usage: node arlocal-server.mjs --port <port> --host <host> --db <absolute dir> [--persist]
 *
 * arlocal's own CLI listens on every interface, resolves `--dbpath` against the working directory
 * and, without `--persist`, deletes the default database of every arlocal in `~/.arlocal`. Here the
 * server binds `--host` only (Koa's `listen` is wrapped before arlocal starts), the database lives
 * in `--db`, and arlocal's request log (`./logs`) goes to the working directory the parent chose.
 *
 * Exits by itself within a second when its parent process dies.
 *
 * Exit codes: 0 after SIGTERM/SIGINT, 2 on bad arguments, 3 when sqlite3's native binding cannot be
 * loaded (install scripts are off; see sqlite3.ts), 1 on any other failure to start.
 */
import { createServer } from 'node:http'
import { createRequire } from 'node:module'
import { parseArgs } from 'node:util'

const require = createRequire(import.meta.url)

const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    host: { type: 'string', default: '127.0.0.1' },
    db: { type: 'string' },
    persist: { type: 'boolean', default: false },
  },
})
const port = Number(values.port)
if (!Number.isInteger(port) || port <= 0 || port > 65535 || !values.db || !values.db.startsWith('/')) {
  console.error('usage: arlocal-server.mjs --port <port> --host <host> --db <absolute dir> [--persist]')
  process.exit(2)
}

const arlocalMain = require.resolve('arlocal')
const fromArlocal = createRequire(arlocalMain)

try {
  fromArlocal('sqlite3')
} catch (err) {
  console.error(`SQLITE3_BINDING_MISSING: sqlite3's native binding cannot be loaded: ${err instanceof Error ? err.message : String(err)}`)
  process.exit(3)
}

// Bind the one host we were given: arlocal calls `app.listen(port, cb)`, which listens everywhere.
const Koa = fromArlocal('koa')
Koa.prototype.listen = function listen(listenPort, callback) {
  const server = createServer(this.callback())
  server.once('error', (err) => {
    console.error(`arlocal cannot listen on ${values.host}:${listenPort}: ${err.message}`)
    process.exit(1)
  })
  return server.listen(listenPort, values.host, typeof callback === 'function' ? callback : undefined)
}

const ArLocal = require('arlocal').default
const app = new ArLocal(port, false, values.db, values.persist, 0)

let stopping = false
/**
 * Closes the server and the database, then exits (a second signal exits at once). ArLocal.stop() is
 * not used: it does not wait, and its `down()` tries to drop every table when persisting.
 */
async function stop() {
  if (stopping) process.exit(0)
  stopping = true
  setTimeout(() => process.exit(0), 1000).unref()
  const server = app.getServer()
  if (server) {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(() => resolve(undefined)))
  }
  await app.connection.destroy().catch(() => {})
  process.exit(0)
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
// The parent kills our process group on exit, but cannot when it is SIGKILLed: then we are
// re-parented, and stop by ourselves.
const parent = process.ppid
setInterval(() => {
  if (process.ppid !== parent) void stop()
}, 1000).unref()

try {
  await app.start()
} catch (err) {
  console.error(`arlocal failed to start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`)
  process.exit(1)
}
