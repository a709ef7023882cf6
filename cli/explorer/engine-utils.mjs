// Served as the EZKL engine's utils.js: the engine's own imports the json-bigint package by its bare
// name, which a browser cannot resolve without a bundler; these two helpers keep the same contract
// with plain JSON (big integers as strings). The explorer page passes bytes to the engine and does
// not call them.
export function deserialize(buffer) {
  const bytes = buffer instanceof Uint8ClampedArray ? new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength) : buffer
  return JSON.parse(new TextDecoder().decode(bytes))
}

export function serialize(data) {
  const text = typeof data === 'object' ? JSON.stringify(data, (_, v) => (typeof v === 'bigint' ? v.toString() : v)) : String(data)
  return new Uint8ClampedArray(new TextEncoder().encode(text).buffer)
}
