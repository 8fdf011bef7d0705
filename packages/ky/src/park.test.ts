import {
  createEngine,
  isSessionExpiredError,
  OAuthError,
  RefreshError,
  type RefreshFunction,
  type TokenSet,
} from '@reauth/core'
import ky1, { isTimeoutError as isTimeoutError1 } from 'ky'
// ky 2 is installed in test/ as the npm alias `ky2` (packages/ky's devDependency is ky 1).
import ky2, { isTimeoutError as isTimeoutError2 } from 'ky2'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { deferred } from '../../../test/support/deferred.js'
import { withReauth } from './index.js'

const API = 'https://api.example.test'
const OTHER = 'https://other.example.test'

type LooseKy = ((
  input: string | URL | Request,
  options?: Record<string, unknown>,
) => Promise<Response> & { json(): Promise<unknown>; text(): Promise<string> }) & {
  create(options?: Record<string, unknown>): LooseKy
  extend(options: Record<string, unknown>): LooseKy
}

const majors = [
  {
    name: 'ky 1',
    ky: ky1 as unknown as LooseKy,
    prefix: { prefixUrl: API },
    isTimeoutError: isTimeoutError1,
  },
  {
    name: 'ky 2',
    ky: ky2 as unknown as LooseKy,
    prefix: { prefix: API },
    isTimeoutError: isTimeoutError2,
  },
]

const expired: TokenSet = {
  accessToken: 'old',
  tokenType: 'Bearer',
  refreshToken: 'r0',
  expiresAt: Date.now() - 1_000,
}
const fresh: TokenSet = { accessToken: 'new', tokenType: 'Bearer', refreshToken: 'r1' }

/** ky's `fetch`, recording what was sent; answers JSON with the path. */
function fakeServer() {
  const sent: { path: string; authorization: string | null; accept: string | null }[] = []
  const fetch = async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = input instanceof Request ? input : new Request(input, init)
    const path = new URL(request.url).pathname
    sent.push({
      path,
      authorization: request.headers.get('authorization'),
      accept: request.headers.get('accept'),
    })
    return Response.json({ path })
  }
  return { sent, fetch }
}

afterEach(() => {
  vi.useRealTimers()
  vi.unstubAllGlobals()
})

/** Counts the `Request`s built (ky builds one per call before its hooks run). */
function countRequests(): () => number {
  let built = 0
  const Original = globalThis.Request
  vi.stubGlobal(
    'Request',
    class extends Original {
      constructor(input: RequestInfo | URL, init?: RequestInit) {
        super(input, init)
        built++
      }
    },
  )
  return () => built
}

describe.each(majors)(
  '$name: a call that would wait for a refresh is parked before ky builds it',
  (major) => {
    /** The instance, and how many `Request`s ky built. */
    function setUp(
      refresh: RefreshFunction,
      defaults: Record<string, unknown> = {},
      tokens: TokenSet = expired,
    ) {
      const server = fakeServer()
      const engine = createEngine({ tokens, refresh })
      const built = countRequests()
      const api = withReauth(
        major.ky.create({ ...major.prefix, fetch: server.fetch, retry: 0, ...defaults }),
        engine,
      ) as unknown as LooseKy & { get: LooseKy; extend: (options: unknown) => LooseKy }
      return { server, engine, api, built }
    }

    it('ky builds nothing while the refresh runs; then the call goes once, with the new token', async () => {
      const gate = deferred<TokenSet>()
      const refresh = vi.fn(() => gate.promise)
      const { server, engine, api, built } = setUp(refresh)
      const calls = [api('a'), api.get('b'), api('c', { method: 'post' })]
      await vi.waitFor(() => expect(engine.stats().joins).toBe(2))
      await vi.waitFor(() => expect(refresh).toHaveBeenCalledTimes(1))
      expect(built()).toBe(0)
      expect(server.sent).toHaveLength(0)
      gate.resolve(fresh)
      const responses = await Promise.all(calls)
      expect(responses.map((r) => r.status)).toEqual([200, 200, 200])
      expect(built()).toBe(3)
      expect(server.sent.map((s) => s.authorization)).toEqual([
        'Bearer new',
        'Bearer new',
        'Bearer new',
      ])
      expect(refresh).toHaveBeenCalledTimes(1)
    })

    it('the body shortcuts work on a parked call, and ky sets their Accept header', async () => {
      const gate = deferred<TokenSet>()
      const { server, api } = setUp(() => gate.promise)
      const json = api('me').json()
      const text = api('text').text()
      gate.resolve(fresh)
      expect(await json).toEqual({ path: '/me' })
      expect(await text).toBe('{"path":"/text"}')
      expect(server.sent.map((s) => s.accept)).toEqual(['application/json', 'text/*'])
    })

    it('a refresh failure rejects the parked call with this request’s own error; ky never sees it', async () => {
      const gate = deferred<TokenSet>()
      const { server, api, built } = setUp(() => gate.promise)
      const first = api('a').catch((e: unknown) => e)
      const second = api('b')
        .json()
        .catch((e: unknown) => e)
      gate.reject(new OAuthError({ error: 'invalid_grant', status: 400 }))
      const [a, b] = await Promise.all([first, second])
      expect(isSessionExpiredError(a)).toBe(true)
      expect(isSessionExpiredError(b)).toBe(true)
      // Each waiter gets its own copy of the shared failure.
      expect(a).not.toBe(b)
      expect(built()).toBe(0)
      expect(server.sent).toHaveLength(0)
    })

    it('the caller’s abort ends a parked call with the abort error, nothing sent', async () => {
      const gate = deferred<TokenSet>()
      const { server, engine, api } = setUp(() => gate.promise)
      const controller = new AbortController()
      const aborted = api('a', { signal: controller.signal }).catch((e: unknown) => e)
      const other = api('b').json()
      await vi.waitFor(() => expect(engine.stats().joins).toBe(1))
      controller.abort()
      const error = await aborted
      expect((error as DOMException).name).toBe('AbortError')
      gate.resolve(fresh)
      expect(await other).toEqual({ path: '/b' })
      expect(server.sent.map((s) => s.path)).toEqual(['/b'])
    })

    it('the call’s timeout bounds the park: ky’s TimeoutError, nothing sent, no timer left', async () => {
      vi.useFakeTimers()
      const { server, api } = setUp(() => new Promise<TokenSet>(() => {}), { timeout: 200 })
      const first = api('a').catch((e: unknown) => e)
      await vi.advanceTimersByTimeAsync(100)
      const second = api('b').catch((e: unknown) => e)
      await vi.advanceTimersByTimeAsync(100)
      expect(major.isTimeoutError(await first)).toBe(true)
      // The second call has 100 ms left.
      await vi.advanceTimersByTimeAsync(99)
      expect(server.sent).toHaveLength(0)
      await vi.advanceTimersByTimeAsync(1)
      expect(major.isTimeoutError(await second)).toBe(true)
      expect(server.sent).toHaveLength(0)
      // The engine's own refresh timeout is the only timer left.
      expect(vi.getTimerCount()).toBe(1)
    })

    it('a released call goes with the token it waited for; the lot leaves no timer behind', async () => {
      vi.useFakeTimers()
      const gate = deferred<TokenSet>()
      const { server, api } = setUp(() => gate.promise, { timeout: 1_000 })
      const call = api('a')
      await vi.advanceTimersByTimeAsync(400)
      gate.resolve(fresh)
      expect((await call).status).toBe(200)
      expect(server.sent).toHaveLength(1)
      expect(vi.getTimerCount()).toBe(0)
    })

    it('calls reauth leaves alone are never parked', async () => {
      const gate = deferred<TokenSet>()
      const { server, engine, api } = setUp(() => gate.promise)
      // Start the refresh with one parked call.
      const parked = api('parked')
      await vi.waitFor(() => expect(engine.stats().proactive).toBe(1))
      await api('optout', { context: { reauth: false } })
      await api('own', { headers: { Authorization: 'Basic dXNlcg==' } })
      await api(`${OTHER}/elsewhere`, { [Object.keys(major.prefix)[0] as string]: '' })
      expect(server.sent.map((s) => [s.path, s.authorization])).toEqual([
        ['/optout', null],
        ['/own', 'Basic dXNlcg=='],
        ['/elsewhere', null],
      ])
      gate.resolve(fresh)
      await parked
      expect(server.sent.at(-1)).toMatchObject({ path: '/parked', authorization: 'Bearer new' })
    })

    it('never parks calls of an instance that sends its own Authorization, opts out, or has beforeRequest hooks', async () => {
      const gate = deferred<TokenSet>()
      const { server, engine, api } = setUp(() => gate.promise)
      const parked = api('parked')
      await vi.waitFor(() => expect(engine.stats().proactive).toBe(1))
      const own = api.extend({ headers: { Authorization: 'Basic dXNlcg==' } })
      const optOut = api.extend({ context: { reauth: false } })
      const hooked = api.extend({ hooks: { beforeRequest: [() => {}] } })
      const byFunction = api.extend(() => ({ context: { reauth: false } }))
      await own('own')
      await optOut('optout')
      await byFunction('byfunction')
      const fromHook = hooked('hooked')
      // Not parked: ky built it, and it waits in reauth's hook (the user's hook may set a header).
      await vi.waitFor(() => expect(engine.stats().joins).toBe(1))
      expect(server.sent.map((s) => [s.path, s.authorization])).toEqual([
        ['/own', 'Basic dXNlcg=='],
        ['/optout', null],
        ['/byfunction', null],
      ])
      gate.resolve(fresh)
      await Promise.all([parked, fromHook])
    })

    it('a transient failure of the grant before expiry sends the parked call with the current token: one grant', async () => {
      const valid: TokenSet = { ...expired, expiresAt: Date.now() + 2_000 }
      const refresh = vi.fn(async (): Promise<TokenSet> => {
        throw new RefreshError('token endpoint down', { retryable: true, status: 503 })
      })
      const { server, api } = setUp(refresh, {}, valid)
      const response = await api('me')
      expect(response.status).toBe(200)
      expect(server.sent.map((s) => s.authorization)).toEqual(['Bearer old'])
      expect(refresh).toHaveBeenCalledTimes(1)
    })

    it('ky refusing a parked call synchronously rejects it: no call left pending', async () => {
      const gate = deferred<TokenSet>()
      const { api } = setUp(() => gate.promise)
      // A timeout ky refuses when the call is made (above what a timer can wait).
      const refused = api('me', { timeout: 2_147_483_648 }).catch((e: unknown) => e)
      gate.resolve(fresh)
      expect(await refused).toBeInstanceOf(Error)
    })

    it('a body shortcut asked after the call went leaves no unhandled rejection when the call fails', async () => {
      const unhandled: unknown[] = []
      const onUnhandled = (reason: unknown) => unhandled.push(reason)
      process.on('unhandledRejection', onUnhandled)
      try {
        const gate = deferred<TokenSet>()
        const answer = deferred<void>()
        let sent = 0
        const failing = async () => {
          sent++
          await answer.promise
          return new Response('down', { status: 500 })
        }
        const engine = createEngine({ tokens: expired, refresh: () => gate.promise })
        const api = withReauth(
          major.ky.create({ ...major.prefix, fetch: failing, retry: 0 }),
          engine,
        ) as unknown as LooseKy
        const call = api('x')
        gate.resolve(fresh)
        // The call went (it is in flight) before the shortcut is asked for.
        await vi.waitFor(() => expect(sent).toBe(1))
        const json = call.json().catch((e: unknown) => e)
        answer.resolve()
        const error = await json
        expect((error as Error).name).toBe('HTTPError')
        // Node reports an unhandled rejection once the microtasks after a macrotask drained:
        // two turns of the event loop, no timer.
        for (let turn = 0; turn < 2; turn++) await new Promise((resolve) => setImmediate(resolve))
        expect(unhandled).toEqual([])
      } finally {
        process.off('unhandledRejection', onUnhandled)
      }
    })
  },
)
