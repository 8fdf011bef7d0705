/**
 * `pnpm demo`: a real OpenID Provider (oidc-provider) and a protected API on 127.0.0.1, a
 * real sign-in (authorization code + PKCE + offline_access), then axios, ky and fetch on ONE
 * engine firing bursts of concurrent requests across several short token lifetimes.
 *
 * Phase 0 is the control: a token that does not expire during the run (its own provider, one
 * hour lifetimes), so no request ever meets a refresh. Phase 1 knows each token's expiry
 * (`expires_in`): reauth refreshes ahead of it in the background, so the API sees no 401 and
 * no request waits — its latency should match the control's. Phase 2 forgets it (as with a
 * server that sends no `expires_in`): every expiry meets a wave of 401s, which must cost
 * exactly one grant.
 * Exits 0 only when no request failed and the provider revoked no grant.
 */
import { attachReauth } from '@reauth/axios'
import { createEngine, type Engine } from '@reauth/core'
import { createFetch } from '@reauth/fetch'
import { withReauth } from '@reauth/ky'
import { createRefreshGrant } from '@reauth/oauth'
import axios from 'axios'
import ky from 'ky'

// oidc-provider warns about its development-only parts (in-memory adapter, Node 20); the
// demo uses exactly those on purpose.
for (const level of ['warn', 'info'] as const) {
  const original = console[level]
  console[level] = (...args: unknown[]) => {
    if (String(args[0]).includes('oidc-provider')) return
    original(...args)
  }
}
// Imported after the filter: oidc-provider warns as it loads.
const { clientOptions, signInOverHttp, startApi, startProvider, storeWithoutExpiry } = await import(
  '@reauth/testbed'
)

const TTL_SECONDS = 3
const LIFETIMES = 3
const BURST = 60
const BURST_EVERY_MS = 150

const provider = await startProvider({ accessTokenTtl: TTL_SECONDS })
const api = await startApi({ issuer: provider.issuer })
// The control's provider: the same, but its tokens outlive the run.
const steady = await startProvider({ accessTokenTtl: 3600 })
const steadyApi = await startApi({ issuer: steady.issuer })
console.log(`OpenID Provider  ${provider.issuer}  (control: ${steady.issuer})`)
console.log(`protected API    ${api.origin}  (control: ${steadyApi.origin})`)

type Provider = typeof provider
type Api = typeof api
const defaultApi = api
const defaultProvider = provider

interface PhaseResult {
  phase: string
  requests: number
  ok: number
  failed: number
  '401s seen': number
  grants: number
  'ahead (background)': number
  'margin grants': number
  'waits (margin)': number
  'waits (401)': number
  'max wait ms': number
  'joined waiters': number
  'stale retries': number
  replays: number
  'p50 ms': number
  'p99 ms': number
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0
  const index = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)
  return Math.round((sorted[index] as number) * 10) / 10
}

async function phase(
  name: string,
  engine: Engine,
  api: Api = defaultApi,
  provider: Provider = defaultProvider,
): Promise<PhaseResult> {
  const viaAxios = axios.create({ baseURL: api.origin })
  attachReauth(viaAxios, engine)
  const viaKy = withReauth(ky.create({ prefixUrl: api.origin }), engine)
  const viaFetch = createFetch(engine, { origins: [api.origin] })
  const clients: Array<() => Promise<number>> = [
    () => viaAxios.get('/orders').then((r) => r.status),
    () => viaKy.get('orders').then((r) => r.status),
    async () => {
      const response = await viaFetch(`${api.origin}/orders`)
      await response.arrayBuffer()
      return response.status
    },
  ]
  const before = {
    unauthorized: api.counters.unauthorized,
    grants: provider.counters.refreshGrants,
  }
  // Every request that waited for a grant, by why: inside the expiry margin (proactive) or
  // after a 401 (reactive). Refresh-ahead's promise is that the first stays 0.
  const waits = { proactive: 0, reactive: 0, longest: 0 }
  const unsubscribe = engine.on('wait', ({ reason, durationMs }) => {
    if (reason === 'proactive') waits.proactive++
    else if (reason === 'reactive') waits.reactive++
    waits.longest = Math.max(waits.longest, durationMs)
  })
  const latencies: number[] = []
  let ok = 0
  let failed = 0
  let lastLine = 0
  const until = Date.now() + LIFETIMES * TTL_SECONDS * 1000
  while (Date.now() < until) {
    const started = Date.now()
    await Promise.all(
      Array.from({ length: BURST }, async (_, i) => {
        const t0 = performance.now()
        try {
          const status = await (clients[i % clients.length] as () => Promise<number>)()
          if (status === 200) ok++
          else failed++
        } catch {
          failed++
        }
        latencies.push(performance.now() - t0)
      }),
    )
    const stats = engine.stats()
    const line =
      `${name}: ${ok + failed} requests, ${ok} ok, ${failed} failed, ` +
      `${api.counters.unauthorized - before.unauthorized} 401s, ${stats.grants} grants, ${stats.joins} joined`
    // A live line on a terminal; a line a second elsewhere (CI logs).
    if (process.stdout.isTTY) process.stdout.write(`\r${line}   `)
    else if (Date.now() - lastLine >= 1000) {
      lastLine = Date.now()
      console.log(line)
    }
    const rest = BURST_EVERY_MS - (Date.now() - started)
    if (rest > 0) await new Promise((resolve) => setTimeout(resolve, rest))
  }
  if (process.stdout.isTTY) process.stdout.write('\n')
  unsubscribe()
  latencies.sort((a, b) => a - b)
  const stats = engine.stats()
  return {
    phase: name,
    requests: ok + failed,
    ok,
    failed,
    '401s seen': api.counters.unauthorized - before.unauthorized,
    grants: provider.counters.refreshGrants - before.grants,
    'ahead (background)': stats.background,
    'margin grants': stats.proactive,
    'waits (margin)': waits.proactive,
    'waits (401)': waits.reactive,
    'max wait ms': waits.longest,
    'joined waiters': stats.joins,
    'stale retries': stats.staleRetries,
    replays: stats.replays,
    'p50 ms': percentile(latencies, 50),
    'p99 ms': percentile(latencies, 99),
  }
}

const started = Date.now()
const refresh = createRefreshGrant(clientOptions(provider.issuer))

console.log('\nsigning in to the control provider…')
const control = createEngine({
  tokens: await signInOverHttp(steady.issuer),
  refresh: createRefreshGrant(clientOptions(steady.issuer)),
})
const results = [await phase('0 control       ', control, steadyApi, steady)]

console.log('signing in (authorization code + PKCE + offline_access)…')
const proactive = createEngine({ tokens: await signInOverHttp(provider.issuer), refresh })
results.push(await phase('1 expiry known  ', proactive))

console.log('signing in again…')
const reactive = createEngine({ store: storeWithoutExpiry(), refresh })
await reactive.setTokens(await signInOverHttp(provider.issuer))
results.push(await phase('2 expiry unknown', reactive))

console.table(results)
const [base, known] = results as [PhaseResult, PhaseResult, PhaseResult]
const ratio = (a: number, b: number) => (b > 0 ? (a / b).toFixed(2) : 'n/a')
console.log(
  `expiry known vs control: p50 ×${ratio(known['p50 ms'], base['p50 ms'])}, p99 ×${ratio(known['p99 ms'], base['p99 ms'])} (refresh-ahead: no request waits for a grant)`,
)
const failed = results.reduce((sum, r) => sum + r.failed, 0)
const revoked = provider.counters.grantsRevoked + steady.counters.grantsRevoked
console.log(`grants revoked by the provider (a reused refresh token would do that): ${revoked}`)
console.log(`token endpoint errors: ${JSON.stringify(provider.counters.grantErrors)}`)
console.log(`done in ${((Date.now() - started) / 1000).toFixed(1)} s`)
await Promise.all([api.stop(), steadyApi.stop()])
await Promise.all([provider.stop(), steady.stop()])
process.exitCode = failed === 0 && revoked === 0 ? 0 : 1
