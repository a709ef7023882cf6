/** Hyperlane messenger: real Hyperlane v3 core contracts plus local validator and relayer agents. */
export * from './deploy.ts'
export * from './message.ts'
export * from './stores.ts'
export * from './validator.ts'
export * from './relayer.ts'
export * from './agents.ts'
export * from './plugin.ts'
