/**
 * The contract suite: one table of scenarios, run against every adapter (test/support/harness.ts)
 * through the @reauth/msw fake authorization server with onUnhandledRequest: 'error'.
 */
import {
  createEngine,
  dpopThumbprint,
  type Engine,
  generateDpopKeyPair,
  isRefreshError,
  isSessionExpiredError,
  type TokenSet,
} from '@reauth/core'
import { createAuthServer } from '@reauth/msw'
import { HttpResponse, http } from 'msw'
import { setupServer } from 'msw/node'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import { deferred } from './support/deferred.js'
import { harnesses, type TestClient } from './support/harness.js'
import { LeakCollector } from './support/leaks.js'
import { createTestRefresh } from './support/refresh.js'

const API = 'https://api.reauth.test'
const OTHER = 'https://other.reauth.test'

/**
 * The fake server checks DPoP (RFC 9449) proofs and bindings: in Bearer mode tokens are plain
 * Bearer tokens; in DPoP mode every set is bound to the engine's key and every send carries a
 * proof the server verifies (signature, htm/htu, iat, jti replay, ath, cnf.jkt).
 */
const auth = createAuthServer({ accessTokenTtl: 60, dpop: true })
const modes = ['Bearer', 'DPoP'] as const

interface Hit {
  authorization: string | null
  contentType: string | null
  bytes: Uint8Array
}
const echoHits: Hit[] = []
const otherHits: Array<string | null> = []
let lateGate = deferred()
let lateReached = deferred()
let lateCalls = 0
let alwaysCalls = 0

const server = setupServer(
  ...auth.handlers,
  auth.protect('GET', `${API}/me`),
  // Records every body sent to /echo (401s included), then falls through to the protected route.
  http.post(`${API}/echo`, async ({ request }) => {
    echoHits.push({
      authorization: request.headers.get('authorization'),
      contentType: request.headers.get('content-type'),
      bytes: new Uint8Array(await request.clone().arrayBuffer()),
    })
  }),
  auth.protect('POST', `${API}/echo`),
  // The first call answers 401 only after the test opens the gate (a late 401).
  http.get(`${API}/late`, async () => {
    lateCalls++
    if (lateCalls === 1) {
      lateReached.resolve()
      await lateGate.promise
      return HttpResponse.json(
        { error: 'invalid_token' },
        { status: 401, headers: { 'www-authenticate': 'Bearer error="invalid_token"' } },
      )
    }
    return HttpResponse.json({ ok: true })
  }),
  http.get(`${API}/always-401`, () => {
    alwaysCalls++
    return HttpResponse.json(
      { error: 'invalid_token' },
      { status: 401, headers: { 'www-authenticate': 'Bearer error="invalid_token"' } },
    )
  }),
  http.get(`${OTHER}/public`, ({ request }) => {
    otherHits.push(request.headers.get('authorization'))
    return HttpResponse.json({ ok: true })
  }),
)

beforeAll(() => server.listen({ onUnhandledRequest: 'error' }))
afterAll(() => server.close())

describe.each(modes)('%s mode', (mode) => {
  describe.each(harnesses)('contract: $name', (harness) => {
    let engine: Engine
    let client: TestClient
    let leaks: LeakCollector
    let sessionExpiredEvents: number
    let initial: TokenSet

    /** A new session: DPoP-bound to a new key pair in DPoP mode. */
    async function signIn(): Promise<TokenSet> {
      if (mode === 'Bearer') return auth.signIn()
      const dpopKey = await generateDpopKeyPair()
      const tokens = auth.signIn({ dpopJkt: await dpopThumbprint(dpopKey.publicKey) })
      return { ...tokens, dpopKey }
    }

    beforeEach(async () => {
      auth.reset()
      echoHits.length = 0
      otherHits.length = 0
      lateGate = deferred()
      lateReached = deferred()
      lateCalls = 0
      alwaysCalls = 0
      leaks = new LeakCollector()
      initial = await signIn()
      leaks.tokens(initial)
      const refresh = createTestRefresh(auth.tokenEndpoint)
      engine = createEngine({
        tokens: initial,
        refresh: async (context) => {
          const tokens = await refresh(context)
          leaks.tokens(tokens)
          return tokens
        },
        logger: leaks.logger,
      })
      leaks.watch(engine)
      sessionExpiredEvents = 0
      engine.on('sessionExpired', () => sessionExpiredEvents++)
      client = harness.create(engine, API)
    })

    afterEach(() => {
      vi.useRealTimers()
      // Scenario 11 holds for every scenario: no token value in any text reauth produced.
      expect(leaks.leaks()).toEqual([])
      // DPoP mode: the server verified a proof for every authorised send, and refused none.
      expect(auth.counters.dpop.proofsRejected).toBe(0)
      if (mode === 'Bearer') expect(auth.counters.dpop.proofsAccepted).toBe(0)
    })

    it('D. every send and every replay carries its own proof (DPoP mode), none in Bearer mode', async () => {
      auth.expireAccessTokens()
      const results = await Promise.all(Array.from({ length: 10 }, () => send(`${API}/me`)))
      expect(results.map((r) => r.status)).toEqual(Array(10).fill(200))
      const stored = await engine.getToken()
      expect(stored?.tokenType).toBe(mode)
      // 10 first sends (401, a proof each) + 10 replays + 1 grant: each proof checked once
      expect(auth.counters.dpop.proofsAccepted).toBe(mode === 'DPoP' ? 21 : 0)
      expect(auth.counters.grants).toBe(1)
      expect(auth.counters.reuseDetected).toBe(0)
    })

    /** Run a request and collect what it threw, for the leak scan. */
    async function send(url: string, options?: Parameters<TestClient['request']>[1]) {
      try {
        return await client.request(url, options)
      } catch (error) {
        leaks.error(error)
        throw error
      }
    }

    it.each([1, 10, 1000])('1. %i concurrent 401s → exactly 1 grant, all succeed', async (n) => {
      auth.expireAccessTokens()
      const gate = auth.hold()
      const results = Array.from({ length: n }, () => send(`${API}/me`))
      await gate.reached
      gate.release()
      const settled = await Promise.all(results)
      expect(settled.every((r) => r.status === 200)).toBe(true)
      expect(auth.counters.grants).toBe(1)
      expect(auth.counters.tokenRequests).toBe(1)
      const stats = engine.stats()
      expect(stats.grants).toBe(1)
      // every other caller joined the grant in flight or retried with its result: none queued behind the lock
      expect(stats.joins + stats.staleRetries).toBe(n - 1)
      expect(stats.adopted).toBe(0)
      expect(auth.counters.routes[`GET ${API}/me`]?.unauthorized).toBe(n)
    })

    it('2. a 401 that arrives after the refresh finished → no new grant, the request succeeds', async () => {
      const late = send(`${API}/late`)
      await lateReached.promise
      auth.expireAccessTokens()
      expect((await send(`${API}/me`)).status).toBe(200)
      expect(auth.counters.grants).toBe(1)
      lateGate.resolve()
      expect((await late).status).toBe(200)
      expect(auth.counters.grants).toBe(1)
      expect(engine.stats().staleRetries).toBe(1)
      expect(lateCalls).toBe(2)
    })

    it('3. a token known to expire is refreshed proactively across lifetimes → 0 401s', async () => {
      vi.useFakeTimers({ toFake: ['Date'] })
      for (let lifetime = 0; lifetime < 5; lifetime++) {
        vi.setSystemTime(Date.now() + 55_000)
        expect((await send(`${API}/me`)).status).toBe(200)
      }
      expect(auth.counters.routes[`GET ${API}/me`]?.unauthorized ?? 0).toBe(0)
      expect(auth.counters.grants).toBe(5)
      expect(engine.stats().proactive).toBe(5)
    })

    it('3b. refresh-ahead: inside the window requests go at once with the current token while one grant runs in the background', async () => {
      vi.useFakeTimers({ toFake: ['Date'] })
      vi.setSystemTime(Date.now() + 40_000) // 20 s left of 60: inside the window, outside the margin
      const gate = auth.hold()
      // The grant is held at the server: had any request waited for it, this would never settle.
      const results = await Promise.all(Array.from({ length: 20 }, () => send(`${API}/me`)))
      expect(results.map((r) => r.status)).toEqual(Array(20).fill(200))
      await gate.reached
      expect(engine.stats()).toMatchObject({ grants: 1, background: 1, proactive: 0, joins: 0 })
      gate.release()
      await vi.waitFor(() => expect(auth.counters.grants).toBe(1))
      await vi.waitFor(async () =>
        expect((await engine.getToken())?.accessToken).not.toBe(initial.accessToken),
      )
      expect((await send(`${API}/me`)).status).toBe(200)
      expect(auth.counters.grants).toBe(1)
      expect(auth.counters.reuseDetected).toBe(0)
      expect(auth.counters.routes[`GET ${API}/me`]?.unauthorized ?? 0).toBe(0)
    })

    it('3c. a failed background grant fails no request while the token is valid', async () => {
      vi.useFakeTimers({ toFake: ['Date'] })
      vi.setSystemTime(Date.now() + 40_000)
      auth.enqueue({ type: 'status', status: 503 })
      const results = await Promise.all(Array.from({ length: 10 }, () => send(`${API}/me`)))
      expect(results.map((r) => r.status)).toEqual(Array(10).fill(200))
      await vi.waitFor(() => expect(engine.stats().failures).toBe(1))
      expect((await send(`${API}/me`)).status).toBe(200)
      expect(sessionExpiredEvents).toBe(0)
    })

    it('4. terminal failure → every waiter gets SessionExpiredError, store cleared, event once, later requests fail fast', async () => {
      auth.enqueue({ type: 'oauth-error', error: 'invalid_grant' })
      auth.expireAccessTokens()
      const gate = auth.hold()
      const results = Array.from({ length: 10 }, () =>
        send(`${API}/me`).then(
          () => 'ok',
          (e) => e,
        ),
      )
      await gate.reached
      await vi.waitFor(() => expect(engine.stats().joins).toBe(9))
      gate.release()
      const errors = await Promise.all(results)
      expect(errors.every(isSessionExpiredError)).toBe(true)
      expect(sessionExpiredEvents).toBe(1)
      await expect(engine.getToken()).rejects.toSatisfy(isSessionExpiredError)
      const hits = auth.counters.routes[`GET ${API}/me`]?.hits
      const tokenRequests = auth.counters.tokenRequests
      await expect(send(`${API}/me`)).rejects.toSatisfy(isSessionExpiredError)
      expect(auth.counters.routes[`GET ${API}/me`]?.hits).toBe(hits)
      expect(auth.counters.tokenRequests).toBe(tokenRequests)
      expect(sessionExpiredEvents).toBe(1)
      // New tokens end the expired state.
      await engine.setTokens(await signIn())
      expect((await send(`${API}/me`)).status).toBe(200)
    })

    it('5. transient failure → every waiter gets RefreshError, tokens kept, the next request recovers', async () => {
      auth.enqueue({ type: 'status', status: 503 })
      auth.expireAccessTokens()
      const gate = auth.hold()
      const results = Array.from({ length: 10 }, () =>
        send(`${API}/me`).then(
          () => 'ok',
          (e) => e,
        ),
      )
      await gate.reached
      await vi.waitFor(() => expect(engine.stats().joins).toBe(9))
      gate.release()
      const errors = await Promise.all(results)
      expect(errors.every((e) => isRefreshError(e) && e.retryable && e.status === 503)).toBe(true)
      expect((await engine.getToken())?.refreshToken).toBe(initial.refreshToken)
      expect(sessionExpiredEvents).toBe(0)
      expect((await send(`${API}/me`)).status).toBe(200)
      expect(auth.counters.grants).toBe(1)
    })

    it('5b. 503 with Retry-After → no grant before it passes, then recovery', async () => {
      vi.useFakeTimers({ toFake: ['Date'] })
      auth.enqueue({ type: 'status', status: 503, retryAfter: 30 })
      auth.expireAccessTokens()
      await expect(send(`${API}/me`)).rejects.toSatisfy(
        (e) => isRefreshError(e) && e.retryAfter === 30_000,
      )
      const tokenRequests = auth.counters.tokenRequests
      await expect(send(`${API}/me`)).rejects.toSatisfy(isRefreshError)
      expect(auth.counters.tokenRequests).toBe(tokenRequests)
      vi.setSystemTime(Date.now() + 30_000)
      expect((await send(`${API}/me`)).status).toBe(200)
      expect(auth.counters.tokenRequests).toBe(tokenRequests + 1)
    })

    it('6. a replay that gets 401 again goes back to the caller: one grant, no loop', async () => {
      const result = await send(`${API}/always-401`)
      expect(result.status).toBe(401)
      expect(alwaysCalls).toBe(2)
      expect(auth.counters.grants).toBe(1)
    })

    it('7. abort while waiting on the refresh → only that request rejects, at once', async () => {
      auth.expireAccessTokens()
      const gate = auth.hold()
      const controller = new AbortController()
      const aborted = send(`${API}/me`, { signal: controller.signal })
      const others = Array.from({ length: 4 }, () => send(`${API}/me`))
      await gate.reached
      await vi.waitFor(() => expect(engine.stats().joins).toBe(4))
      controller.abort()
      const error = await aborted.then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(harness.isAbortError(error)).toBe(true)
      gate.release()
      expect((await Promise.all(others)).map((r) => r.status)).toEqual([200, 200, 200, 200])
      expect(auth.counters.grants).toBe(1)
    })

    const form = new FormData()
    form.set('name', 'reauth')
    form.set('file', new Blob(['hello, file'], { type: 'text/plain' }), 'hello.txt')
    it.each([
      { kind: 'json' as const, value: { a: 1, text: 'ünïcode ✓' } },
      { kind: 'urlencoded' as const, value: new URLSearchParams({ a: '1', b: 'two words' }) },
      { kind: 'multipart' as const, value: form },
    ])('8. POST with a $kind body → the replay is byte-identical', async (body) => {
      auth.expireAccessTokens()
      const result = await send(`${API}/echo`, { body })
      expect(result.status).toBe(200)
      expect(echoHits).toHaveLength(2)
      const [first, replay] = echoHits as [Hit, Hit]
      expect(first.authorization).not.toBe(replay.authorization)
      expect(replay.contentType).toBe(first.contentType)
      expect(replay.bytes.byteLength).toBeGreaterThan(0)
      expect(Buffer.from(replay.bytes).equals(Buffer.from(first.bytes))).toBe(true)
    })

    it('9. a request to an origin that is not allowed is sent without a token; opt-out skips the token', async () => {
      expect((await send(`${OTHER}/public`)).status).toBe(200)
      expect(otherHits).toEqual([null])
      expect((await send(`${API}/me`, { skip: true })).status).toBe(401)
      expect(auth.counters.grants).toBe(0)
    })

    it('10. rotation → the new refresh token is stored and used; the old one is never sent again', async () => {
      auth.expireAccessTokens()
      expect((await send(`${API}/me`)).status).toBe(200)
      const rotated = await engine.getToken()
      expect(rotated?.refreshToken).toBeDefined()
      expect(rotated?.refreshToken).not.toBe(initial.refreshToken)
      auth.expireAccessTokens()
      expect((await send(`${API}/me`)).status).toBe(200)
      expect(auth.presentedRefreshTokens).toEqual([initial.refreshToken, rotated?.refreshToken])
      expect(auth.counters.reuseDetected).toBe(0)
    })

    it('11. no token value in errors, events or log lines across success, transient, malformed and terminal', async () => {
      auth.expireAccessTokens()
      await send(`${API}/me`)
      auth.enqueue(
        { type: 'status', status: 500 },
        { type: 'json', json: { token_type: 'Bearer', expires_in: 60 } },
        { type: 'oauth-error', error: 'invalid_grant', description: 'refresh token revoked' },
      )
      for (let i = 0; i < 3; i++) {
        auth.expireAccessTokens()
        await send(`${API}/me`).catch(() => undefined)
      }
      expect(sessionExpiredEvents).toBe(1)
      expect(leaks.secrets.size).toBeGreaterThanOrEqual(4)
      expect(leaks.texts.length).toBeGreaterThan(10)
      // the scan itself runs in afterEach, for this and every other scenario
    })
  })
})
