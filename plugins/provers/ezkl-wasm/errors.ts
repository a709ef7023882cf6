/** Errors of the ezkl-wasm prover: the ones every ezkl prover shares (see ../ezkl-common/errors.ts). */
export { InputOutOfRangeError, InputShapeError, ProverDisposedError, ProverError } from '../ezkl-common/errors.ts'

/** This plugin's name, as in its errors and `ProverPlugin.name`. */
export const PLUGIN_NAME = 'ezkl-wasm'
