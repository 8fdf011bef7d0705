/**
 * `pnpm demo`: a real OpenID Provider (oidc-provider) and a protected API on 127.0.0.1, a
 * real sign-in (authorization code + PKCE + offline_access), then axios, ky and fetch on ONE
 * engine firing bursts of concurrent requests across several token lifetimes.
 *
 * Four phases, each with its own provider, API and engine, run interleaved: every round fires
 * one burst per phase, one after the other, in an order rotated each round, so load and drift
 * hit the four alike.
 * - 0 control: a token that does not expire during the run (one-hour lifetimes), so no
 *   request ever meets a refresh.
 * - 1 expiry known (`expires_in`): reauth refreshes ahead of it in the background, so the API
 *   sees no 401 and no request waits — its latency should match the control's.
 * - 2 expiry unknown (as with a server that sends no `expires_in`): every expiry meets a wave
 *   of 401s, which must cost exactly one grant.
 * - 3 DPoP (RFC 9449), expiry known: as phase 1, with DPoP-bound tokens (signed in with a key
 *   from `generateDpopKeyPair()`); the provider requires DPoP nonces at its token endpoint and
 *   the API requires its own nonce in every proof and verifies every proof (signature, htm,
 *   htu, iat, jti, ath, nonce, the token's `cnf.jkt`). Every send carries a fresh proof; its
 *   p50/p99 against phase 1's is DPoP's cost per request under the same load.
 *
 * The token lifetime (8 s): oidc-provider keeps `exp` in whole seconds (`exp = floor(now / 1000)
 * + ttl`, expired once `exp <= floor(now / 1000)`), so a token lives between TTL − 1 and TTL
 * seconds while the client counts a full TTL from when it asked. With 3 s tokens that error (up
 * to 1 s) was larger than the expiry margin (a quarter of the lifetime, 0.75 s) and than the
 * refresh-ahead window's head start (1.5 s before the client's expiry, as little as 0.5 s before
 * the real one): a background grant slower than that under load, or a request in transit across
 * the real expiry, met a 401. With 8 s the window opens 4 s before the client's expiry (at least
 * 3 s before the real one) and the margin is 2 s.
 *
 * Exits 0 only when no request failed, no provider revoked a grant and the API refused no DPoP proof.
 */
import { attachReauth } from '@reauth/axios'
import { createEngine, type Engine, type EngineStats, generateDpopKeyPair } from '@reauth/core'
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

const TTL_SECONDS = 8
const LIFETIMES = 3
const BURST = 60
const ROUND_EVERY_MS = 150

type Provider = Awaited<ReturnType<typeof startProvider>>
type Api = Awaited<ReturnType<typeof startApi>>

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
  /** DPoP proofs the API accepted and refused (since counting began); '-' for Bearer phases. */
  'proofs ok': number | '-'
  'proofs refused': number | '-'
  /** Refresh tokens presented again (the provider revokes the grant when it sees one), whole run. */
  reuse: number
  'p50 ms': number
  'p99 ms': number
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0
  const index = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)
  return Math.round((sorted[index] as number) * 10) / 10
}

/** One phase: its provider, API, engine and three clients, and what its bursts saw. */
class Phase {
  readonly latencies: number[] = []
  ok = 0
  failed = 0
  /** Requests that waited for a grant, by why: inside the expiry margin, or after a 401. */
  readonly waits = { proactive: 0, reactive: 0, longest: 0 }
  private readonly clients: Array<() => Promise<number>>
  private readonly start: {
    unauthorized: number
    grants: number
    proofsAccepted: number
    proofsRejected: number
    engine: EngineStats | undefined
  }
  private unsubscribe: () => void

  constructor(
    readonly name: string,
    readonly engine: Engine,
    readonly api: Api,
    readonly provider: Provider,
    readonly dpop = false,
  ) {
    const viaAxios = axios.create({ baseURL: api.origin })
    attachReauth(viaAxios, engine)
    const viaKy = withReauth(ky.create({ prefixUrl: api.origin }), engine)
    const viaFetch = createFetch(engine, { origins: [api.origin] })
    this.clients = [
      () => viaAxios.get('/orders').then((r) => r.status),
      () => viaKy.get('orders').then((r) => r.status),
      async () => {
        const response = await viaFetch(`${api.origin}/orders`)
        await response.arrayBuffer()
        return response.status
      },
    ]
    this.start = {
      unauthorized: 0,
      grants: 0,
      proofsAccepted: 0,
      proofsRejected: 0,
      engine: undefined,
    }
    this.unsubscribe = () => {}
  }

  /** Counting starts here (after the warm-up round). */
  begin(): void {
    this.start.unauthorized = this.api.counters.unauthorized
    this.start.grants = this.provider.counters.refreshGrants
    this.start.proofsAccepted = this.api.counters.dpopAccepted
    this.start.proofsRejected = this.api.counters.dpopRejected
    this.start.engine = { ...this.engine.stats() }
    this.unsubscribe = this.engine.on('wait', ({ reason, durationMs }) => {
      if (reason === 'proactive') this.waits.proactive++
      else if (reason === 'reactive') this.waits.reactive++
      this.waits.longest = Math.max(this.waits.longest, durationMs)
    })
  }

  /** `BURST` concurrent requests, spread over the three clients. */
  async burst(record: boolean): Promise<void> {
    await Promise.all(
      Array.from({ length: BURST }, async (_, i) => {
        const t0 = performance.now()
        let good = false
        try {
          good = (await (this.clients[i % this.clients.length] as () => Promise<number>)()) === 200
        } catch {}
        if (!record) return
        if (good) this.ok++
        else this.failed++
        this.latencies.push(performance.now() - t0)
      }),
    )
  }

  get unauthorized(): number {
    return this.api.counters.unauthorized - this.start.unauthorized
  }

  line(): string {
    return `${this.name.trim()}: ${this.ok + this.failed} requests, ${this.failed} failed, ${this.unauthorized} 401s, ${this.engine.stats().grants - (this.start.engine?.grants ?? 0)} grants`
  }

  result(): PhaseResult {
    this.unsubscribe()
    const sorted = [...this.latencies].sort((a, b) => a - b)
    // The engine's counters since counting began (the warm-up's are left out, e.g. the DPoP
    // phase's first-contact nonce retries).
    const now = this.engine.stats()
    const stats = Object.fromEntries(
      Object.entries(now).map(([key, value]) => [
        key,
        value - (this.start.engine?.[key as keyof EngineStats] ?? 0),
      ]),
    ) as unknown as EngineStats
    return {
      phase: this.name,
      requests: this.ok + this.failed,
      ok: this.ok,
      failed: this.failed,
      '401s seen': this.unauthorized,
      grants: this.provider.counters.refreshGrants - this.start.grants,
      'ahead (background)': stats.background,
      'margin grants': stats.proactive,
      'waits (margin)': this.waits.proactive,
      'waits (401)': this.waits.reactive,
      'max wait ms': this.waits.longest,
      'joined waiters': stats.joins,
      'stale retries': stats.staleRetries,
      replays: stats.replays,
      'proofs ok': this.dpop ? this.api.counters.dpopAccepted - this.start.proofsAccepted : '-',
      'proofs refused': this.dpop
        ? this.api.counters.dpopRejected - this.start.proofsRejected
        : '-',
      reuse: this.provider.counters.grantsRevoked,
      'p50 ms': percentile(sorted, 50),
      'p99 ms': percentile(sorted, 99),
    }
  }
}

const started = Date.now()
// Each phase has its own provider and API, so their counters are the phase's own.
const [steady, knownProvider, unknownProvider, dpopProvider] = await Promise.all([
  startProvider({ accessTokenTtl: 3600 }),
  startProvider({ accessTokenTtl: TTL_SECONDS }),
  startProvider({ accessTokenTtl: TTL_SECONDS }),
  startProvider({ accessTokenTtl: TTL_SECONDS, dpop: { requireNonce: true } }),
])
const [steadyApi, knownApi, unknownApi, dpopApi] = await Promise.all([
  startApi({ issuer: steady.issuer }),
  startApi({ issuer: knownProvider.issuer }),
  startApi({ issuer: unknownProvider.issuer }),
  startApi({ issuer: dpopProvider.issuer, dpop: { requireNonce: true } }),
])
const providers = [steady, knownProvider, unknownProvider, dpopProvider]
const apis = [steadyApi, knownApi, unknownApi, dpopApi]
console.log(
  `OpenID Providers ${steady.issuer} (control), ${knownProvider.issuer}, ${unknownProvider.issuer}, ${dpopProvider.issuer} (DPoP, nonces required)`,
)
console.log(
  `protected APIs   ${steadyApi.origin} (control), ${knownApi.origin}, ${unknownApi.origin}, ${dpopApi.origin} (DPoP proofs verified, nonces required)`,
)
console.log(
  `access tokens live ${TTL_SECONDS} s (control: 1 h); ${LIFETIMES} lifetimes of bursts of ${BURST}, the four phases interleaved`,
)

console.log('\nsigning in (authorization code + PKCE + offline_access), once per phase…')
const control = createEngine({
  tokens: await signInOverHttp(steady.issuer),
  refresh: createRefreshGrant(clientOptions(steady.issuer)),
})
const proactive = createEngine({
  tokens: await signInOverHttp(knownProvider.issuer),
  refresh: createRefreshGrant(clientOptions(knownProvider.issuer)),
})
const reactive = createEngine({
  store: storeWithoutExpiry(),
  refresh: createRefreshGrant(clientOptions(unknownProvider.issuer)),
})
await reactive.setTokens(await signInOverHttp(unknownProvider.issuer))
// DPoP: the sign-in binds the tokens to the key (`dpop_jkt`, a proof); the key goes into the
// engine with them, and the refresh grant sends proofs with it.
const dpopKey = await generateDpopKeyPair()
const bound = createEngine({
  tokens: { ...(await signInOverHttp(dpopProvider.issuer, { dpop: dpopKey })), dpopKey },
  refresh: createRefreshGrant(clientOptions(dpopProvider.issuer)),
})

const phases = [
  new Phase('0 control       ', control, steadyApi, steady),
  new Phase('1 expiry known  ', proactive, knownApi, knownProvider),
  new Phase('2 expiry unknown', reactive, unknownApi, unknownProvider),
  new Phase('3 DPoP, known   ', bound, dpopApi, dpopProvider, true),
]

// Warm-up round, not recorded: JIT and connections for every phase's clients.
for (const phase of phases) await phase.burst(false)
for (const phase of phases) phase.begin()

const until = Date.now() + LIFETIMES * TTL_SECONDS * 1000
let round = 0
let lastLine = Date.now()
while (Date.now() < until) {
  const roundStarted = Date.now()
  for (let i = 0; i < phases.length; i++) {
    await (phases[(round + i) % phases.length] as Phase).burst(true)
  }
  round++
  if (Date.now() - lastLine >= 2000) {
    lastLine = Date.now()
    console.log(
      `${Math.round((lastLine - started) / 1000)} s  ${phases.map((p) => p.line()).join('  |  ')}`,
    )
  }
  const rest = ROUND_EVERY_MS - (Date.now() - roundStarted)
  if (rest > 0) await new Promise((resolve) => setTimeout(resolve, rest))
}

const results = phases.map((p) => p.result())
console.table(results)
const [base, known, , dpop] = results as [PhaseResult, PhaseResult, PhaseResult, PhaseResult]
const ratio = (a: number, b: number) => (b > 0 ? (a / b).toFixed(2) : 'n/a')
console.log(
  `expiry known vs control: p50 ×${ratio(known['p50 ms'], base['p50 ms'])}, p99 ×${ratio(known['p99 ms'], base['p99 ms'])} (refresh-ahead: no request waits for a grant; target within 5 %: ×0.95–×1.05)`,
)
console.log(
  `DPoP vs expiry known (Bearer): p50 ×${ratio(dpop['p50 ms'], known['p50 ms'])}, p99 ×${ratio(dpop['p99 ms'], known['p99 ms'])} (a proof signed per send by the client and verified by the API, both in this one process; DPoP nonce challenges at the API: ${dpopApi.counters.dpopNonceChallenges}, at the token endpoint: ${dpopProvider.counters.grantErrors.use_dpop_nonce ?? 0}, whole run)`,
)
const failed = results.reduce((sum, r) => sum + r.failed, 0)
const revoked = providers.reduce((sum, p) => sum + p.counters.grantsRevoked, 0)
const proofsRefused = dpopApi.counters.dpopRejected
console.log(`grants revoked by the provider (a reused refresh token would do that): ${revoked}`)
console.log(
  `token endpoint errors: ${JSON.stringify({ ...knownProvider.counters.grantErrors, ...unknownProvider.counters.grantErrors })}; DPoP provider: ${JSON.stringify(dpopProvider.counters.grantErrors)} (a use_dpop_nonce is sent again with the nonce it brought: no grant spent)`,
)
console.log(`done in ${((Date.now() - started) / 1000).toFixed(1)} s`)
await Promise.all(apis.map((a) => a.stop()))
await Promise.all(providers.map((p) => p.stop()))
process.exitCode = failed === 0 && revoked === 0 && proofsRefused === 0 ? 0 : 1
