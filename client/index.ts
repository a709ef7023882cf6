/**
 * `@sertn/client`: typed viem actions over a viem client for contracts and front ends that consume
 * Sertn's verified inference.
 */
export {}
