/**
 * reauth over axios, on Node: an axios instance you already have, bursts of concurrent
 * requests across several token lifetimes against the @reauth/msw fake authorization server
 * (in process, nothing leaves the machine). Prints what happened.
 * Run it with `pnpm --filter @reauth/example-axios-node start`.
 */
import { attachReauth } from '@reauth/axios'
import { createEngine, OAuthError, parseTokenResponse } from '@reauth/core'
import { createAuthServer } from '@reauth/msw'
import axios from 'axios'
import { setupServer } from 'msw/node'

const API = 'https://api.example.test'
const auth = createAuthServer({ accessTokenTtl: 60, rotateRefreshTokens: true })
const server = setupServer(...auth.handlers, auth.protect('GET', `${API}/orders`))
server.listen({ onUnhandledRequest: 'error' })

// 0. The instance the app already has. Nothing else in the app changes.
const api = axios.create({ baseURL: API, timeout: 5_000 })

// 1. The engine: owns the tokens and the single-flight refresh. The refresh uses the same
//    instance; passing `signal` on lets reauth recognise the refresh's own request.
const engine = createEngine({
  tokens: auth.signIn({ scope: 'openid offline_access' }),
  async refresh({ tokens, signal, startedAt }) {
    const body = new URLSearchParams({
      grant_type: 'refresh_token',
      client_id: 'reauth-test',
      refresh_token: tokens.refreshToken ?? '',
    })
    try {
      const { data } = await api.post(auth.tokenEndpoint, body, { signal })
      return parseTokenResponse(data, { sentAt: startedAt })
    } catch (error) {
      if (axios.isAxiosError<{ error?: string }>(error) && error.response) {
        const { status, data } = error.response
        throw new OAuthError({ error: data?.error ?? 'server_error', status })
      }
      throw error
    }
  },
})

// 2. One call: interceptors on the instance; the token goes only to the baseURL origin.
const detach = attachReauth(api, engine)

const bursts = 5
const perBurst = 200
let ok = 0
let failed = 0
const started = performance.now()
for (let burst = 1; burst <= bursts; burst++) {
  auth.expireAccessTokens() // the server expires every token: the next requests all get 401
  const results = await Promise.allSettled(
    Array.from({ length: perBurst }, () => api.get('/orders')),
  )
  for (const result of results) {
    if (result.status === 'fulfilled' && result.value.status === 200) ok++
    else failed++
  }
  const stats = engine.stats()
  process.stdout.write(
    `burst ${burst}/${bursts}: ${ok} ok, ${failed} failed, ${stats.grants} grants\n`,
  )
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
detach()
server.close()
process.exitCode =
  failed === 0 && stats.grants === bursts && auth.counters.reuseDetected === 0 ? 0 : 1
