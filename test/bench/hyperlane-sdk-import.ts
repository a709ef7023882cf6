/**
 * What the SDK-backed Hyperlane relayer costs to load, in a fresh process: importing the plugin
 * (which must not load `@hyperlane-xyz/sdk`), then the relayer's lazily imported SDK module.
 * Usage: `npx tsx test/bench/hyperlane-sdk-import.ts` (prints one JSON line).
 */
const rssMb = () => Math.round(process.memoryUsage().rss / 2 ** 20)
const rss0 = rssMb()
let t = performance.now()
await import('../../plugins/messengers/hyperlane/index.ts')
const pluginMs = performance.now() - t
const rss1 = rssMb()
t = performance.now()
await import('../../plugins/messengers/hyperlane/sdk-relay.ts')
const sdkMs = performance.now() - t
const rss2 = rssMb()
console.log(
  JSON.stringify({
    node: process.version,
    rssStartMb: rss0,
    pluginImportMs: Math.round(pluginMs),
    pluginRssMb: rss1 - rss0,
    sdkImportMs: Math.round(sdkMs),
    sdkRssMb: rss2 - rss1,
    rssAfterSdkMb: rss2,
  }),
)
