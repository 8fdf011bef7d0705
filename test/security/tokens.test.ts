/**
 * Where tokens go and where they don't, for every adapter entry, across the contract
 * scenarios (bursts of 401s, proactive refresh, rotation, stale 401s, bodies, transient,
 * malformed and terminal failures):
 * - the refresh token reaches only the token endpoint: never the API, in headers, URL or body;
 * - the token endpoint never gets an access token;
 * - no token value in any thrown error (message, stack, JSON, util.inspect, cause chain),
 *   event payload or log line.
 */
import { inspect } from 'node:util'
import { createEngine, type Engine, isRefreshError, isSessionExpiredError } from '@reauth/core'
import { createAuthServer } from '@reauth/msw'
import { createRefreshGrant } from '@reauth/oauth'
import { http } from 'msw'
import { setupServer } from 'msw/node'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import { fetchHarness, harnesses, type TestClient, type TestRequest } from '../support/harness.js'
import { LeakCollector } from '../support/leaks.js'
import { createTestRefresh } from '../support/refresh.js'

const API = 'https://api.reauth.test'
const auth = createAuthServer({ accessTokenTtl: 60 })

interface Seen {
  url: string
  headers: string
  body: string
}
const seen: Seen[] = []
const server = setupServer(
  // Records every request (token endpoint included), then falls through to the real handlers.
  // (A handler, not the `request:start` event: on Node 24 the event's clone of an axios
  // http-adapter multipart body never finishes.)
  http.all('*', async ({ request }) => {
    seen.push({
      url: request.url,
      headers: JSON.stringify([...request.headers]),
      body: await request.clone().text(),
    })
  }),
  ...auth.handlers,
  auth.protect('GET', `${API}/me`),
  auth.protect('POST', `${API}/echo`),
)

beforeAll(() => server.listen({ onUnhandledRequest: 'error' }))
afterAll(() => server.close())

const form = () => {
  const data = new FormData()
  data.set('file', new Blob(['content']), 'a.txt')
  return data
}

describe.each(harnesses)('tokens: $name', (harness) => {
  let engine: Engine
  let client: TestClient
  let leaks: LeakCollector
  const refreshTokens = new Set<string>()
  const accessTokens = new Set<string>()
  const errors: unknown[] = []

  beforeEach(() => {
    auth.reset()
    seen.length = 0
    errors.length = 0
    refreshTokens.clear()
    accessTokens.clear()
    leaks = new LeakCollector()
    const initial = auth.signIn()
    const remember = (tokens: { accessToken: string; refreshToken?: string }) => {
      leaks.tokens(tokens as never)
      accessTokens.add(tokens.accessToken)
      if (tokens.refreshToken) refreshTokens.add(tokens.refreshToken)
    }
    remember(initial)
    const refresh = createTestRefresh(auth.tokenEndpoint)
    engine = createEngine({
      tokens: initial,
      refresh: async (context) => {
        const tokens = await refresh(context)
        remember(tokens)
        return tokens
      },
      logger: leaks.logger,
    })
    leaks.watch(engine)
    client = harness.create(engine, API)
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  async function send(path: string, options?: TestRequest) {
    try {
      return await client.request(`${API}${path}`, options)
    } catch (error) {
      errors.push(error)
      leaks.error(error)
      return { status: -1 }
    }
  }

  it('the refresh token goes only to the token endpoint; no token in any error, event or log line', async () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    // a burst of 401s, one grant
    auth.expireAccessTokens()
    await Promise.all(Array.from({ length: 10 }, () => send('/me')))
    // proactive refreshes across lifetimes, with rotation
    for (let i = 0; i < 2; i++) {
      vi.setSystemTime(Date.now() + 55_000)
      expect((await send('/me')).status).toBe(200)
    }
    // replayed bodies of every kind
    auth.expireAccessTokens()
    await send('/echo', { body: { kind: 'json', value: { a: 1 } } })
    auth.expireAccessTokens()
    await send('/echo', { body: { kind: 'urlencoded', value: new URLSearchParams({ a: '1' }) } })
    auth.expireAccessTokens()
    await send('/echo', { body: { kind: 'multipart', value: form() } })
    // transient, malformed, then terminal
    auth.enqueue(
      { type: 'status', status: 503, retryAfter: 1 },
      { type: 'json', json: { access_token: 'leaky-access', token_type: 'mac' } },
      { type: 'oauth-error', error: 'invalid_grant', description: 'revoked' },
    )
    leaks.secrets.add('leaky-access')
    for (let i = 0; i < 3; i++) {
      auth.expireAccessTokens()
      vi.setSystemTime(Date.now() + 2_000)
      await send('/me')
    }
    await send('/me')
    expect(errors.filter(isRefreshError)).toHaveLength(2)
    expect(errors.filter(isSessionExpiredError)).toHaveLength(2)
    expect(auth.counters.grants).toBe(6)
    expect(refreshTokens.size).toBe(7)

    const requests = seen
    const toApi = requests.filter((r) => r.url.startsWith(API))
    const toTokenEndpoint = requests.filter((r) => r.url === auth.tokenEndpoint)
    expect(toApi.length).toBeGreaterThan(20)
    expect(toTokenEndpoint).toHaveLength(9)
    for (const request of toApi) {
      for (const token of refreshTokens) {
        expect(request.url + request.headers + request.body).not.toContain(token)
      }
    }
    for (const request of toTokenEndpoint) {
      for (const token of accessTokens) {
        expect(request.url + request.headers + request.body).not.toContain(token)
      }
    }
    // every refresh token presented was the current one: no reuse
    expect(auth.counters.reuseDetected).toBe(0)
    // no token value in any error (message, stack, JSON, cause chain), event or log line…
    expect(leaks.leaks()).toEqual([])
    // …nor in what util.inspect prints (console.error(error), most error trackers)
    for (const error of errors) {
      const printed = inspect(error, { depth: 8 })
      for (const secret of leaks.secrets) expect(printed).not.toContain(secret)
    }
  })
})

describe('tokens: @reauth/oauth createRefreshGrant', () => {
  beforeEach(() => {
    auth.reset()
  })

  // Regression: oauth4webapi keeps the parsed token response (`{ body }`) as its error's
  // cause; RefreshError kept that error as its cause, so util.inspect printed the tokens the
  // server had just issued, and an unsupported token_type had no `field`.
  it.each([
    [
      'an unsupported token_type',
      { access_token: 'leaky-access-1', token_type: 'mac' },
      'token_type',
    ],
    [
      'a malformed expires_in',
      {
        access_token: 'leaky-access-2',
        token_type: 'Bearer',
        refresh_token: 'leaky-refresh-2',
        expires_in: 'soon',
      },
      'expires_in',
    ],
  ])(
    '%s: the issued tokens are not kept in the error, and the field is named',
    async (_, json, field) => {
      const leaks = new LeakCollector()
      const initial = auth.signIn()
      leaks.tokens(initial)
      for (const value of Object.values(json))
        if (String(value).startsWith('leaky')) leaks.secrets.add(String(value))
      const engine = createEngine({
        tokens: initial,
        refresh: createRefreshGrant({ issuer: auth.issuer, clientId: 'reauth-test' }),
        logger: leaks.logger,
      })
      leaks.watch(engine)
      const client = fetchHarness.create(engine, API)
      auth.enqueue({ type: 'json', json })
      auth.expireAccessTokens()
      const error = await client.request(`${API}/me`).catch((e: unknown) => e)
      leaks.error(error)
      expect(isRefreshError(error) && error.field).toBe(field)
      expect(leaks.leaks()).toEqual([])
      const printed = inspect(error, { depth: 10, showHidden: true })
      for (const secret of leaks.secrets) expect(printed).not.toContain(secret)
    },
  )
})
