/**
 * Type-checking stand-in for the `@safe-global/*` packages (never loaded at run time: tsconfig
 * `paths` maps them here for `tsc` only; tsx and Node ignore `paths` for imports made from inside
 * node_modules, which is the only place they are imported from).
 *
 * Why: `@hyperlane-xyz/sdk`'s declaration files import them (Gnosis Safe submitters), and their
 * `index.d.ts` augment abitype's `Register` with `AddressType: string`, which would turn viem's
 * `Address` (`0x${string}`) into `string` in this whole program. Only the names the SDK's
 * declarations import are declared, as `any`.
 */
declare const Safe: any
export default Safe
export type SafeProviderConfig = any
export type SafeTransaction = any
export type SafeTransactionData = any
