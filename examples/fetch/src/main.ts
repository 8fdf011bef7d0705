/**
 * reauth over fetch, on Node: bursts of concurrent requests across several token lifetimes
 * against the @reauth/msw fake authorization server (in process, nothing leaves the machine).
 * Prints what happened. Run it with `pnpm demo` from the repository root.
 */
import { createEngine, OAuthError, parseTokenResponse } from '@reauth/core'
import { createFetch } from '@reauth/fetch'
import { createAuthServer } from '@reauth/msw'
import { setupServer } from 'msw/node'

const API = 'https://api.example.test'
const auth = createAuthServer({ accessTokenTtl: 60, rotateRefreshTokens: true })
const server = setupServer(...auth.handlers, auth.protect('GET', `${API}/orders`))
server.listen({ onUnhandledRequest: 'error' })

// 1. The engine: owns the tokens and the single-flight refresh.
const engine = createEngine({
  tokens: auth.signIn({ scope: 'openid offline_access' }),
  async refresh({ tokens, signal, startedAt }) {
    const body = new URLSearchParams({
      grant_type: 'refresh_token',
      client_id: 'reauth-test',
      refresh_token: tokens.refreshToken ?? '',
    })
    const response = await fetch(auth.tokenEndpoint, { method: 'POST', body, signal })
    const json = (await response.json()) as { error?: string }
    if (!response.ok) throw new OAuthError({ error: json.error ?? 'server_error', status: response.status })
    return parseTokenResponse(json, { sentAt: startedAt })
  },
})

// 2. The fetch wrapper: same signature as fetch, tokens only to the API's origin.
const api = createFetch(engine, { origins: [API] })

const bursts = 5
const perBurst = 200
let ok = 0
let failed = 0
const started = performance.now()
for (let burst = 1; burst <= bursts; burst++) {
  auth.expireAccessTokens() // the server expires every token: the next requests all get 401
  const results = await Promise.allSettled(
    Array.from({ length: perBurst }, () => api(`${API}/orders`)),
  )
  for (const result of results) {
    if (result.status === 'fulfilled' && result.value.ok) ok++
    else failed++
  }
  const stats = engine.stats()
  process.stdout.write(`burst ${burst}/${bursts}: ${ok} ok, ${failed} failed, ${stats.grants} grants\n`)
}
const stats = engine.stats()
const route = auth.counters.routes[`GET ${API}/orders`]
console.table({
  requests: bursts * perBurst,
  succeeded: ok,
  failed,
  '401s seen': route?.unauthorized ?? 0,
  grants: stats.grants,
  'joined waiters': stats.joins,
  'stale-token retries': stats.staleRetries,
  replays: stats.replays,
  'refresh tokens reused': auth.counters.reuseDetected,
  'elapsed ms': Math.round(performance.now() - started),
})
server.close()
process.exitCode = failed === 0 && stats.grants === bursts && auth.counters.reuseDetected === 0 ? 0 : 1
