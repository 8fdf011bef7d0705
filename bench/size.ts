/**
 * Bundle size (min+gzip) of each @reauth package and of its peers, built the same way with
 * esbuild: bundle, minify, ESM, platform neutral-for-browsers; runtime dependencies bundled in,
 * only peer dependencies (axios, ky, msw) left external. @reauth packages are built from their
 * TypeScript sources through the `source` export condition (what tsup compiles, without a build
 * step). `test/size.test.ts` holds every package to its budget in CI.
 */
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'
import { build } from 'esbuild'

/** A bundle to measure: its entry module and the peer dependencies left out. */
export interface SizeTarget {
  name: string
  /** Module specifiers resolved from the bench package (so peers' own deps resolve too); their exports are bundled. */
  entry: string | readonly string[]
  external: string[]
}

/** Budgets in bytes, min+gzip; set about 20 % above the size measured when they were set. */
export const BUDGETS: Readonly<Record<string, number>> = {
  // Raised after issues 12, 15 and 18 (measured: core 7.0 kB, fetch 1.5 kB, axios 3.1 kB,
  // ky 3.0 kB, oauth 11.5 kB): the RFC 9110 challenge parser, refresh-ahead, scrubbed causes,
  // §5.2 bodies from client errors, the session end, URL resolution in core, axios's and ky's
  // call-wide timeout, oauth's own 2xx reading, discovery redirects and sign-in checks.
  // Raised again after issues 13, 14 and 16 (measured: core 16.0 kB, fetch 1.8 kB, oauth
  // 14.7 kB, msw 8.4 kB, redis 6.0 kB, browser 6.3 kB; about 20% above): p-queue 9 is the
  // replay queue (4.4 kB of core's 16.0 with eventemitter3 and p-timeout — shared with an
  // application that uses p-queue), DPoP proofs and nonces (2.3 kB), client credentials,
  // revocation and per-resource tokens; oauth, msw, redis and browser bundle the core parts
  // they use, and add DPoP (grants, verification, key storage in Redis and IndexedDB).
  // ky raised with issue 15 (measured 4.6 kB): withReauth parks a call that would wait for a
  // refresh before ky builds it (the parked call's promise with ky's body shortcuts, one timer
  // per timeout value), so a waiting request holds ~3 kB instead of ~15 kB.
  // axios raised with issue 15 (measured 4.7 kB): attachReauth parks a call in the instance's
  // methods before axios builds it, with core's parking lot (shared with ky in an app that has
  // both), so a waiting request holds ~0.9 kB instead of ~2.9 kB.
  // axios and fetch raised again in session 6 of issue 15 (measured axios 5.5 kB, fetch
  // 2.2 kB): core's fast lane (a valid token answered by code every engine shares, so a new
  // client does not start cold) and `Connection` as a class, which the adapters bundle, and
  // axios's synchronous interceptor (a request with a valid token is sent in the same turn).
  // ky raised again in session 7 of issue 15 (measured 6.1 kB): withReauth sees responses in
  // ky's `fetch` (a wrapper per fetch, ky 2's `beforeRetry`, the `afterResponse` fallback for
  // requests the wrapper cannot know) besides the hooks `reauthHooks` keep, so ky clones no
  // response and a waiter after a 401 holds 15.5 kB instead of 33.5 kB.
  '@reauth/core': 19_200,
  '@reauth/fetch': 2_650,
  '@reauth/axios': 6_600,
  '@reauth/ky': 7_300,
  '@reauth/oauth': 17_700,
  '@reauth/msw': 10_100,
  '@reauth/redis': 7_250,
  '@reauth/browser': 7_550,
  '@reauth/otel': 2_000,
}

export const REAUTH_TARGETS: readonly SizeTarget[] = [
  { name: '@reauth/core', entry: '@reauth/core', external: [] },
  { name: '@reauth/fetch', entry: '@reauth/fetch', external: [] },
  { name: '@reauth/axios', entry: '@reauth/axios', external: ['axios'] },
  { name: '@reauth/ky', entry: '@reauth/ky', external: ['ky'] },
  { name: '@reauth/oauth', entry: '@reauth/oauth', external: [] },
  { name: '@reauth/msw', entry: '../packages/msw/src/index.ts', external: ['msw', 'msw/*'] },
  {
    name: '@reauth/redis',
    entry: '../packages/redis/src/index.ts',
    external: ['redis', '@redis/*', 'node:*'],
  },
  { name: '@reauth/browser', entry: '../packages/browser/src/index.ts', external: [] },
  {
    name: '@reauth/otel',
    entry: '../packages/otel/src/index.ts',
    external: ['@opentelemetry/api'],
  },
]

/** What an app ships for one client: the adapter with the engine (`createEngine`). */
export const APP_TARGETS: readonly SizeTarget[] = [
  { name: '@reauth/core + fetch', entry: ['@reauth/core', '@reauth/fetch'], external: [] },
  { name: '@reauth/core + axios', entry: ['@reauth/core', '@reauth/axios'], external: ['axios'] },
  { name: '@reauth/core + ky', entry: ['@reauth/core', '@reauth/ky'], external: ['ky'] },
]

export const PEER_TARGETS: readonly SizeTarget[] = [
  { name: 'axios-auth-refresh', entry: 'axios-auth-refresh', external: ['axios'] },
  { name: 'axios-jwt', entry: 'axios-jwt', external: ['axios'] },
]

const benchDir = fileURLToPath(new URL('.', import.meta.url))

export interface Size {
  name: string
  minified: number
  gzip: number
}

/** Bundle one target and measure it. */
export async function measure(target: SizeTarget): Promise<Size> {
  const result = await build({
    stdin: {
      contents: (typeof target.entry === 'string' ? [target.entry] : target.entry)
        .map((entry) => `export * from ${JSON.stringify(entry)}`)
        .join('\n'),
      resolveDir: benchDir,
      loader: 'ts',
    },
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    conditions: ['source'],
    external: target.external,
    define: { 'process.env.NODE_ENV': '"production"' },
    write: false,
    logLevel: 'silent',
  })
  const code = result.outputFiles[0]?.contents
  if (!code) throw new Error(`${target.name}: esbuild wrote nothing`)
  return {
    name: target.name,
    minified: code.byteLength,
    gzip: gzipSync(code, { level: 9 }).byteLength,
  }
}
