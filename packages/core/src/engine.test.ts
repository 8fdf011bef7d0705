import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { type Deferred, deferred } from '../../../test/support/deferred.js'
import { steps } from '../../../test/support/steps.js'
import { createEngine, type Engine, type EngineEvents, type EngineOptions } from './engine.js'
import {
  isReauthOptionsError,
  isRefreshError,
  isSessionExpiredError,
  OAuthError,
  ReauthOptionsError,
  RefreshError,
  SessionExpiredError,
} from './errors.js'
import { createLocalLock } from './local-lock.js'
import { createMemoryStore } from './memory-store.js'
import { createOriginMatcher } from './origins.js'
import { isSessionEnd, parseTokenResponse } from './token-set.js'
import type {
  AuthResponse,
  RefreshContext,
  RefreshFunction,
  RefreshLock,
  StoredSession,
  TokenSet,
  TokenStore,
} from './types.js'

// ---------------------------------------------------------------------------------------------
// Helpers

/** Let every pending promise chain run (fake timers do not touch microtasks). */
async function flush(times = 30): Promise<void> {
  for (let i = 0; i < times; i++) await Promise.resolve()
}

interface Tracked<T> {
  status: 'pending' | 'fulfilled' | 'rejected'
  value: T | undefined
  reason: unknown
}

/** Observe a promise's state without awaiting it (so a missing feature fails, not hangs). */
function track<T>(promise: Promise<T>): Tracked<T> {
  const state: Tracked<T> = { status: 'pending', value: undefined, reason: undefined }
  promise.then(
    (value) => {
      state.status = 'fulfilled'
      state.value = value
    },
    (reason: unknown) => {
      state.status = 'rejected'
      state.reason = reason
    },
  )
  return state
}

const T0 = Date.UTC(2030, 0, 1, 12, 0, 0)
const HOUR = 3_600_000
const API = 'https://api.example.com'

function tokenSet(n: number, overrides: Partial<TokenSet> = {}): TokenSet {
  return {
    accessToken: `access-${n}-SECRET`,
    tokenType: 'Bearer',
    refreshToken: `refresh-${n}-SECRET`,
    expiresAt: T0 + HOUR,
    ...overrides,
  }
}

/** A set as the engine stores it after a grant: it stamps `issuedAt` when `refresh` gave none. */
const refreshed = (n: number) => ({ ...tokenSet(n), issuedAt: expect.any(Number) })

const header = (n: number) => `Bearer access-${n}-SECRET`

/** A refresh function whose every call waits on a deferred the test settles. */
function controlledRefresh() {
  const pending: Array<Deferred<TokenSet>> = []
  const contexts: RefreshContext[] = []
  const fn = vi.fn<RefreshFunction>((context) => {
    contexts.push(context)
    const d = deferred<TokenSet>()
    pending.push(d)
    return d.promise
  })
  return { fn, pending, contexts }
}

/** A store without `subscribe`, recording calls. */
function plainStore(initial?: TokenSet) {
  let current: TokenSet | undefined = initial
  const store = {
    get: vi.fn((): TokenSet | undefined => current),
    set: vi.fn((tokens: TokenSet): void => {
      current = tokens
    }),
    clear: vi.fn((): void => {
      current = undefined
    }),
  }
  const typed: TokenStore = store
  return { store, typed, peek: () => current }
}

function record(engine: Engine) {
  const all: Array<{ event: keyof EngineEvents; payload: unknown }> = []
  for (const event of ['refresh', 'refreshError', 'sessionExpired'] as const) {
    engine.on(event, (payload) => {
      all.push({ event, payload })
    })
  }
  const of = <E extends keyof EngineEvents>(event: E): Array<EngineEvents[E]> =>
    all.filter((entry) => entry.event === event).map((entry) => entry.payload as EngineEvents[E])
  return { all, of }
}

function make(options: Partial<EngineOptions> = {}) {
  const refresh = controlledRefresh()
  const engine = createEngine({
    refresh: refresh.fn,
    ...(options.store ? {} : { tokens: tokenSet(1) }),
    ...options,
  })
  const events = record(engine)
  return { engine, refresh, events }
}

function logSink() {
  return { debug: vi.fn(), info: vi.fn(), warn: vi.fn(), error: vi.fn() }
}

interface FakeResult {
  status: number
  authorization: string | undefined
  id: number
}

function toResponse(result: FakeResult): AuthResponse {
  return { status: result.status, headers: new Headers() }
}

beforeEach(() => {
  vi.useFakeTimers({ now: T0 })
})

afterEach(() => {
  vi.useRealTimers()
})

// ---------------------------------------------------------------------------------------------

describe('createEngine options', () => {
  const refresh: RefreshFunction = async () => tokenSet(2)

  it.each<[string, unknown, RegExp]>([
    ['no options', undefined, /needs an options object/],
    ['refresh not a function', { refresh: 'nope' }, /^"refresh" must be a function$/],
    ['refresh missing', {}, /"refresh" must be a function/],
    ['negative leeway', { refresh, leeway: -1 }, /"leeway" must be a number ≥ 0/],
    ['NaN leeway', { refresh, leeway: Number.NaN }, /"leeway"/],
    ['infinite leeway', { refresh, leeway: Number.POSITIVE_INFINITY }, /"leeway" must be finite/],
    ['refreshTimeout 0', { refresh, refreshTimeout: 0 }, /"refreshTimeout" must be a number ≥ 1/],
    ['refreshTimeout string', { refresh, refreshTimeout: '5' }, /"refreshTimeout"/],
    // Regression: setTimeout turns these into 1 ms, so every grant timed out at once.
    [
      'refreshTimeout Infinity',
      { refresh, refreshTimeout: Number.POSITIVE_INFINITY },
      /"refreshTimeout" must be at most 2147483647 ms/,
    ],
    [
      'refreshTimeout 2^31',
      { refresh, refreshTimeout: 2 ** 31 },
      /"refreshTimeout" must be at most/,
    ],
    [
      'replay.concurrency 0',
      { refresh, replay: { concurrency: 0 } },
      /"replay\.concurrency" must be an integer ≥ 1/,
    ],
    [
      'replay.concurrency 1.5',
      { refresh, replay: { concurrency: 1.5 } },
      /"replay\.concurrency" must be an integer/,
    ],
    ['replay.maxQueued -1', { refresh, replay: { maxQueued: -1 } }, /"replay\.maxQueued"/],
    [
      'store missing get',
      { refresh, store: { set() {}, clear() {} } },
      /"store\.get" must be a function/,
    ],
    [
      'store missing clear',
      { refresh, store: { get() {}, set() {} } },
      /"store\.clear" must be a function/,
    ],
    [
      'tokens with store',
      { refresh, store: createMemoryStore(), tokens: tokenSet(1) },
      /"tokens" cannot be combined with "store"/,
    ],
    [
      'invalid tokens',
      { refresh, tokens: { accessToken: '', tokenType: 'Bearer' } },
      /"tokens": "accessToken"/,
    ],
    [
      'tokens of type mac',
      { refresh, tokens: { accessToken: 'a', tokenType: 'mac' } },
      /"tokens": "tokenType"/,
    ],
    ['empty lockKey', { refresh, lockKey: '' }, /"lockKey" must be a non-empty string/],
    ['lockKey number', { refresh, lockKey: 1 }, /"lockKey"/],
    ['lock without run', { refresh, lock: {} }, /"lock\.run" must be a function/],
    [
      'isAuthError not a function',
      { refresh, isAuthError: 401 },
      /"isAuthError" must be a function/,
    ],
    ['origins bad entry', { refresh, origins: ['/relative'] }, /"origins" entry "\/relative"/],
    [
      'origins number entry',
      { refresh, origins: [7] },
      /"origins" entries must be strings or RegExps/,
    ],
    ['origins a string', { refresh, origins: API }, /"origins" must be an array/],
    ['logger a string', { refresh, logger: 'console' }, /"logger" must be an object/],
  ])('rejects %s with ReauthOptionsError quoting the option', (_, options, message) => {
    let thrown: unknown
    try {
      createEngine(options as EngineOptions)
    } catch (error) {
      thrown = error
    }
    expect(thrown).toBeInstanceOf(ReauthOptionsError)
    expect(isReauthOptionsError(thrown)).toBe(true)
    expect((thrown as ReauthOptionsError).code).toBe('INVALID_OPTION')
    expect((thrown as Error).message).toMatch(message)
  })

  it('accepts good options, including an unbounded replay concurrency', () => {
    expect(() =>
      createEngine({
        refresh,
        tokens: tokenSet(1),
        leeway: 0,
        lockKey: 'k',
        refreshTimeout: 2_147_483_647,
        lock: createLocalLock(),
        replay: { concurrency: Number.POSITIVE_INFINITY, maxQueued: 0 },
        origins: [API, /example/],
        logger: console,
        isAuthError: () => true,
      }),
    ).not.toThrow()
  })

  it('setTokens rejects an invalid set with ReauthOptionsError and leaves the store alone', async () => {
    const { engine } = make()
    await expect(engine.setTokens({ accessToken: 'x', tokenType: 'mac' })).rejects.toBeInstanceOf(
      ReauthOptionsError,
    )
    await expect(engine.getToken()).resolves.toEqual(tokenSet(1))
  })
})

// ---------------------------------------------------------------------------------------------

describe('the request path: attach', () => {
  it('is anonymous without tokens: getToken and authorize give undefined, no refresh', async () => {
    const { engine, refresh } = make({ store: createMemoryStore(), origins: [API] })
    await expect(engine.getToken()).resolves.toBeUndefined()
    await expect(steps(engine).authorize({ url: `${API}/me` })).resolves.toBeUndefined()
    expect(refresh.fn).not.toHaveBeenCalled()
    expect(engine.stats().grants).toBe(0)
  })

  it('gives the header to an allowed origin only, and does not even read the store otherwise', async () => {
    const { store, typed } = plainStore(tokenSet(1))
    const { engine } = make({ store: typed, origins: [API] })
    await expect(steps(engine).authorize({ url: `${API}/me` })).resolves.toBe(header(1))
    expect(store.get).toHaveBeenCalledTimes(1)
    await expect(
      steps(engine).authorize({ url: 'https://evil.example/me' }),
    ).resolves.toBeUndefined()
    await expect(
      steps(engine).authorize({ url: 'http://api.example.com/me' }),
    ).resolves.toBeUndefined()
    await expect(steps(engine).authorize({ url: new URL(`${API}/x`) })).resolves.toBe(header(1))
    expect(store.get).toHaveBeenCalledTimes(2)
  })

  it('leaves skip, hasAuthorization and invalid URLs alone', async () => {
    const { engine } = make({ origins: [API] })
    await expect(steps(engine).authorize({ url: `${API}/me`, skip: true })).resolves.toBeUndefined()
    await expect(
      steps(engine).authorize({ url: `${API}/me`, hasAuthorization: true }),
    ).resolves.toBeUndefined()
    await expect(steps(engine).authorize({ url: 'not a url' })).resolves.toBeUndefined()
    await expect(steps(engine).authorize({ url: '/relative' })).resolves.toBeUndefined()
    await expect(steps(engine).authorize({ url: `${API}/me` })).resolves.toBe(header(1))
  })

  it('sends nothing when neither the engine nor the target allows an origin', async () => {
    const { engine } = make()
    expect(steps(engine).origins).toBeUndefined()
    await expect(steps(engine).authorize({ url: `${API}/me` })).resolves.toBeUndefined()
  })

  it("uses the engine's origins when the target has none, and the target's `allowed` over them", async () => {
    const { engine } = make({ origins: [API] })
    expect(steps(engine).origins?.(new URL(`${API}/a`))).toBe(true)
    const allowed = createOriginMatcher(['https://other.example'])
    await expect(steps(engine).authorize({ url: `${API}/me`, allowed })).resolves.toBeUndefined()
    await expect(
      steps(engine).authorize({ url: 'https://other.example/me', allowed }),
    ).resolves.toBe(header(1))
    await expect(
      steps(engine).authorize({ url: 'https://other.example/me' }),
    ).resolves.toBeUndefined()
  })
})

// ---------------------------------------------------------------------------------------------

describe('the request path: proactive refresh', () => {
  it('refreshes before use when the token expires within the default expiry margin (5 s)', async () => {
    const { engine, refresh, events } = make({ tokens: tokenSet(1, { expiresAt: T0 + 4_000 }) })
    const got = engine.getToken()
    await flush()
    expect(refresh.fn).toHaveBeenCalledTimes(1)
    refresh.pending[0]!.resolve(tokenSet(2))
    await expect(got).resolves.toEqual(refreshed(2))
    expect(engine.stats()).toMatchObject({ grants: 1, proactive: 1, joins: 0 })
    expect(events.of('refresh')).toEqual([
      expect.objectContaining({ reason: 'proactive', adopted: false, expiresAt: T0 + HOUR }),
    ])
  })

  it('does not wait outside the margin (a background grant runs), and waits once the clock reaches it', async () => {
    const { engine, refresh } = make({ tokens: tokenSet(1, { expiresAt: T0 + 5_001 }) })
    await expect(engine.getToken()).resolves.toEqual(tokenSet(1, { expiresAt: T0 + 5_001 }))
    expect(refresh.fn).toHaveBeenCalledTimes(1)
    await vi.advanceTimersByTimeAsync(1)
    const got = track(engine.getToken())
    await flush()
    expect(got.status).toBe('pending')
    expect(refresh.fn).toHaveBeenCalledTimes(1)
    refresh.pending[0]!.resolve(tokenSet(2))
    await flush()
    expect(got.value).toEqual(refreshed(2))
    expect(engine.stats()).toMatchObject({ grants: 1, background: 1, proactive: 0, joins: 1 })
  })

  it('honours a custom leeway', async () => {
    const { engine, refresh } = make({
      leeway: 30_000,
      tokens: tokenSet(1, { expiresAt: T0 + 20_000 }),
    })
    const got = engine.getToken()
    await flush()
    expect(refresh.fn).toHaveBeenCalledTimes(1)
    refresh.pending[0]!.resolve(tokenSet(2))
    await got
    const { engine: zero, refresh: zeroRefresh } = make({
      leeway: 0,
      tokens: tokenSet(1, { expiresAt: T0 + 1 }),
    })
    await zero.getToken()
    expect(zeroRefresh.fn).not.toHaveBeenCalled()
  })

  it('bounds the window by half and the margin by a quarter of the token lifetime (issuedAt → expiresAt)', async () => {
    // Lifetime 8 s: the refresh-ahead window is 4 s (not 60 s), the margin 2 s (not 5 s).
    const short = tokenSet(1, { issuedAt: T0, expiresAt: T0 + 8_000 })
    const { engine, refresh } = make({ tokens: short })
    await expect(engine.getToken()).resolves.toEqual(short)
    await vi.advanceTimersByTimeAsync(3_999)
    await expect(engine.getToken()).resolves.toEqual(short)
    expect(refresh.fn).not.toHaveBeenCalled()
    await vi.advanceTimersByTimeAsync(1)
    // In the window: used at once, one grant in the background.
    await expect(engine.getToken()).resolves.toEqual(short)
    expect(refresh.fn).toHaveBeenCalledTimes(1)
    await vi.advanceTimersByTimeAsync(1_999)
    await expect(engine.getToken()).resolves.toEqual(short)
    await vi.advanceTimersByTimeAsync(1)
    // In the margin: it waits for that grant.
    const got = track(engine.getToken())
    await flush()
    expect(got.status).toBe('pending')
    refresh.pending[0]!.resolve(tokenSet(2))
    await flush()
    expect(got.value).toEqual(refreshed(2))
    expect(refresh.fn).toHaveBeenCalledTimes(1)
  })

  it('never refreshes proactively a token without expiresAt', async () => {
    const { engine, refresh } = make({
      tokens: { accessToken: 'access-1-SECRET', tokenType: 'Bearer' },
    })
    await vi.advanceTimersByTimeAsync(10 * HOUR)
    await expect(engine.getToken()).resolves.toMatchObject({ accessToken: 'access-1-SECRET' })
    expect(refresh.fn).not.toHaveBeenCalled()
  })

  it('computes expiresAt from when the grant started, not from when it answered', async () => {
    const { engine, refresh } = make({ tokens: tokenSet(1, { expiresAt: T0 + 5_000 }) })
    const got = engine.getToken()
    await flush()
    const context = refresh.contexts[0]!
    expect(context.startedAt).toBe(T0)
    expect(context.tokens).toEqual(tokenSet(1, { expiresAt: T0 + 5_000 }))
    // The token endpoint takes 3 s to answer.
    await vi.advanceTimersByTimeAsync(3_000)
    refresh.pending[0]!.resolve(
      parseTokenResponse(
        { access_token: 'access-2-SECRET', token_type: 'Bearer', expires_in: 60 },
        { sentAt: context.startedAt },
      ),
    )
    const fresh = await got
    expect(fresh).toMatchObject({
      accessToken: 'access-2-SECRET',
      issuedAt: T0,
      expiresAt: T0 + 60_000,
    })
    expect(Date.now()).toBe(T0 + 3_000)
  })

  it('returns the old token when a proactive refresh fails transiently while it is still valid', async () => {
    const old = tokenSet(1, { expiresAt: T0 + 5_000 })
    const { engine, refresh, events } = make({ tokens: old })
    const got = engine.getToken()
    await flush()
    refresh.pending[0]!.reject(new TypeError('fetch failed'))
    await expect(got).resolves.toEqual(old)
    expect(events.of('refreshError')).toHaveLength(1)
    expect(engine.stats()).toMatchObject({ grants: 1, failures: 1 })
    // Once it has expired, the same failure reaches the caller.
    await vi.advanceTimersByTimeAsync(5_000)
    const late = engine.getToken()
    await flush()
    refresh.pending[1]!.reject(new TypeError('fetch failed'))
    await expect(late).rejects.toBeInstanceOf(RefreshError)
    expect(refresh.fn).toHaveBeenCalledTimes(2)
  })

  it('joins a refresh in flight instead of starting another', async () => {
    const { engine, refresh } = make({ tokens: tokenSet(1, { expiresAt: T0 + 1_000 }) })
    const a = engine.getToken()
    const b = engine.getToken()
    const c = steps(engine).authorize({ url: `${API}/x`, allowed: () => true })
    await flush()
    expect(refresh.fn).toHaveBeenCalledTimes(1)
    refresh.pending[0]!.resolve(tokenSet(2))
    await expect(Promise.all([a, b, c])).resolves.toEqual([refreshed(2), refreshed(2), header(2)])
    expect(engine.stats()).toMatchObject({ grants: 1, proactive: 1, joins: 2 })
  })
})

// ---------------------------------------------------------------------------------------------

describe('the request path: recover', () => {
  it('retries a stale token with the current one, with no grant', async () => {
    const { engine, refresh, events } = make({ tokens: tokenSet(2) })
    await expect(steps(engine).recover(header(1))).resolves.toBe(header(2))
    expect(refresh.fn).not.toHaveBeenCalled()
    expect(engine.stats()).toMatchObject({ staleRetries: 1, authErrors: 1, grants: 0 })
    expect(events.all).toEqual([])
  })

  it('refreshes when the current token is the one that failed', async () => {
    const { engine, refresh } = make()
    const next = steps(engine).recover(header(1))
    await flush()
    expect(refresh.fn).toHaveBeenCalledTimes(1)
    expect(refresh.contexts[0]!.tokens).toEqual(tokenSet(1))
    refresh.pending[0]!.resolve(tokenSet(2))
    await expect(next).resolves.toBe(header(2))
    expect(engine.stats()).toMatchObject({
      staleRetries: 0,
      authErrors: 1,
      grants: 1,
      proactive: 0,
    })
  })

  it('makes one grant for N concurrent failures of the same token: N-1 joins, one header for all', async () => {
    const { engine, refresh, events } = make()
    const N = 25
    const waiters = Array.from({ length: N }, () => steps(engine).recover(header(1)))
    await flush()
    expect(refresh.fn).toHaveBeenCalledTimes(1)
    refresh.pending[0]!.resolve(tokenSet(2))
    const headers = await Promise.all(waiters)
    expect(new Set(headers)).toEqual(new Set([header(2)]))
    expect(refresh.fn).toHaveBeenCalledTimes(1)
    expect(engine.stats()).toMatchObject({
      grants: 1,
      joins: N - 1,
      authErrors: N,
      staleRetries: 0,
    })
    expect(events.of('refresh')).toEqual([
      { reason: 'reactive', adopted: false, rotated: true, expiresAt: T0 + HOUR, durationMs: 0 },
    ])
    // The next failure of the new token makes a new grant.
    const again = steps(engine).recover(header(2))
    await flush()
    expect(refresh.fn).toHaveBeenCalledTimes(2)
    refresh.pending[1]!.resolve(tokenSet(3))
    await expect(again).resolves.toBe(header(3))
  })

  it('lets a manual refresh() join the refresh in flight', async () => {
    const { engine, refresh } = make()
    const reactive = steps(engine).recover(header(1))
    await flush()
    const manual = engine.refresh()
    await flush()
    expect(refresh.fn).toHaveBeenCalledTimes(1)
    refresh.pending[0]!.resolve(tokenSet(2))
    await expect(manual).resolves.toEqual(refreshed(2))
    await expect(reactive).resolves.toBe(header(2))
    expect(engine.stats()).toMatchObject({ grants: 1, joins: 1 })
  })

  it('makes a manual grant even when the token is fresh', async () => {
    const { engine, refresh, events } = make()
    const manual = engine.refresh()
    await flush()
    expect(refresh.fn).toHaveBeenCalledTimes(1)
    refresh.pending[0]!.resolve(tokenSet(2))
    await expect(manual).resolves.toEqual(refreshed(2))
    expect(events.of('refresh')[0]).toMatchObject({ reason: 'manual' })
  })

  it('writes the store before releasing any waiter', async () => {
    const order: string[] = []
    let current: StoredSession | undefined = tokenSet(1)
    const written = deferred()
    const store: TokenStore = {
      get: () => current,
      async set(tokens) {
        order.push('set:start')
        await written.promise
        current = tokens
        order.push('set:done')
      },
      clear() {
        current = undefined
      },
    }
    const { engine, refresh } = make({ store })
    const waiters: Array<Promise<unknown>> = [
      steps(engine).recover(header(1)),
      steps(engine).recover(header(1)),
      engine.refresh(),
    ]
    const states = waiters.map((w) => track(w))
    for (const w of waiters) void w.then(() => order.push('waiter'))
    await flush()
    refresh.pending[0]!.resolve(tokenSet(2))
    await flush()
    expect(order).toEqual(['set:start'])
    expect(states.map((s) => s.status)).toEqual(['pending', 'pending', 'pending'])
    written.resolve()
    await Promise.all(waiters)
    expect(order).toEqual(['set:start', 'set:done', 'waiter', 'waiter', 'waiter'])
  })

  it('keeps the old refresh token when the response has none, and rotates it when there is one', async () => {
    const { engine, refresh, events } = make()
    const a = engine.refresh()
    await flush()
    refresh.pending[0]!.resolve({
      accessToken: 'access-2-SECRET',
      tokenType: 'Bearer',
      expiresAt: T0 + HOUR,
    })
    await expect(a).resolves.toEqual({
      issuedAt: expect.any(Number),
      accessToken: 'access-2-SECRET',
      tokenType: 'Bearer',
      expiresAt: T0 + HOUR,
      refreshToken: 'refresh-1-SECRET',
    })
    await expect(engine.getToken()).resolves.toMatchObject({ refreshToken: 'refresh-1-SECRET' })
    const b = engine.refresh()
    await flush()
    expect(refresh.contexts[1]!.tokens.refreshToken).toBe('refresh-1-SECRET')
    refresh.pending[1]!.resolve(tokenSet(3))
    await b
    await expect(engine.getToken()).resolves.toEqual(refreshed(3))
    expect(events.of('refresh').map((e) => e.rotated)).toEqual([false, true])
  })
})

// ---------------------------------------------------------------------------------------------

describe('the request path: run()', () => {
  function request(
    engine: Engine,
    overrides: {
      url?: string
      method?: string
      statusFor?: (authorization: string | undefined) => number
      replayable?: () => string | undefined
      signal?: AbortSignal
    } = {},
  ) {
    let id = 0
    const statusFor = overrides.statusFor ?? ((a) => (a === header(1) ? 401 : 200))
    const send = vi.fn(
      async (authorization: string | undefined): Promise<FakeResult> => ({
        status: statusFor(authorization),
        authorization,
        id: ++id,
      }),
    )
    const discard = vi.fn((_: FakeResult) => {})
    const run = steps(engine).run<FakeResult>({
      url: overrides.url ?? `${API}/me?q=1`,
      method: overrides.method ?? 'get',
      send,
      response: toResponse,
      discard,
      ...(overrides.replayable ? { replayable: overrides.replayable } : {}),
      ...(overrides.signal ? { signal: overrides.signal } : {}),
    })
    return { run, send, discard }
  }

  it('attaches, detects the 401, refreshes once, discards the first result and replays', async () => {
    const { engine, refresh } = make({ origins: [API] })
    const { run, send, discard } = request(engine)
    await flush()
    expect(send.mock.calls).toEqual([[header(1)]])
    refresh.pending[0]!.resolve(tokenSet(2))
    await expect(run).resolves.toEqual({ status: 200, authorization: header(2), id: 2 })
    expect(send.mock.calls).toEqual([[header(1)], [header(2)]])
    expect(discard).toHaveBeenCalledTimes(1)
    expect(discard).toHaveBeenCalledWith({ status: 401, authorization: header(1), id: 1 })
    expect(engine.stats()).toMatchObject({ grants: 1, authErrors: 1, replays: 1, unreplayable: 0 })
  })

  it('does not touch a successful response', async () => {
    const { engine, refresh } = make({ origins: [API] })
    const { run, send, discard } = request(engine, { statusFor: () => 200 })
    await expect(run).resolves.toMatchObject({ status: 200, authorization: header(1) })
    expect(send).toHaveBeenCalledTimes(1)
    expect(discard).not.toHaveBeenCalled()
    expect(refresh.fn).not.toHaveBeenCalled()
  })

  it('gives the caller a second 401 as is: never a loop', async () => {
    const { engine, refresh } = make({ origins: [API] })
    const { run, send } = request(engine, { statusFor: () => 401 })
    await flush()
    refresh.pending[0]!.resolve(tokenSet(2))
    await expect(run).resolves.toMatchObject({ status: 401, authorization: header(2), id: 2 })
    expect(send).toHaveBeenCalledTimes(2)
    expect(refresh.fn).toHaveBeenCalledTimes(1)
  })

  it('gives the first response back for an unreplayable body, counts it and logs the reason', async () => {
    const logger = logSink()
    const { engine, refresh } = make({ origins: [API], logger })
    const { run, send, discard } = request(engine, {
      method: 'post',
      url: `${API}/upload?secret=1`,
      replayable: () => 'the body is a one-shot stream',
    })
    await expect(run).resolves.toMatchObject({ status: 401, id: 1 })
    expect(send).toHaveBeenCalledTimes(1)
    expect(discard).not.toHaveBeenCalled()
    expect(refresh.fn).not.toHaveBeenCalled()
    expect(engine.stats()).toMatchObject({ unreplayable: 1, authErrors: 1, replays: 0, grants: 0 })
    const lines = logger.warn.mock.calls.map((call) => String(call[0]))
    expect(lines).toEqual([
      '[reauth] Not replaying POST https://api.example.com/upload: the body is a one-shot stream',
    ])
  })

  it('sends a request to a not-allowed origin with no authorization and leaves its 401 alone', async () => {
    const { engine, refresh } = make({ origins: [API] })
    const { run, send } = request(engine, {
      url: 'https://elsewhere.example/x',
      statusFor: () => 401,
    })
    await expect(run).resolves.toMatchObject({ status: 401, authorization: undefined })
    expect(send.mock.calls).toEqual([[undefined]])
    expect(refresh.fn).not.toHaveBeenCalled()
    expect(engine.stats().authErrors).toBe(0)
  })

  it('replays through the bounded queue', async () => {
    const { engine, refresh } = make({ origins: [API], replay: { concurrency: 1 } })
    const replayGates: Array<Deferred<FakeResult>> = []
    const makeSend = () =>
      vi.fn(async (authorization: string | undefined): Promise<FakeResult> => {
        if (authorization === header(1)) return { status: 401, authorization, id: 0 }
        const gate = deferred<FakeResult>()
        replayGates.push(gate)
        return gate.promise
      })
    const sendA = makeSend()
    const sendB = makeSend()
    const a = steps(engine).run({ url: `${API}/a`, send: sendA, response: toResponse })
    const b = steps(engine).run({ url: `${API}/b`, send: sendB, response: toResponse })
    await flush()
    expect(refresh.fn).toHaveBeenCalledTimes(1)
    refresh.pending[0]!.resolve(tokenSet(2))
    await flush()
    expect(engine.stats()).toMatchObject({ replays: 2, joins: 1 })
    // Concurrency 1: only the first replay is on the wire.
    expect(replayGates).toHaveLength(1)
    expect(sendA).toHaveBeenCalledTimes(2)
    expect(sendB).toHaveBeenCalledTimes(1)
    replayGates[0]!.resolve({ status: 200, authorization: header(2), id: 1 })
    await expect(a).resolves.toMatchObject({ id: 1 })
    await flush()
    expect(sendB).toHaveBeenCalledTimes(2)
    replayGates[1]!.resolve({ status: 200, authorization: header(2), id: 2 })
    await expect(b).resolves.toMatchObject({ id: 2 })
  })

  it("sends the refresh function's own request (carrying the grant signal) untouched, without waiting on itself", async () => {
    let seen: string | undefined = 'not called'
    const engine: Engine = createEngine({
      origins: [API],
      tokens: tokenSet(1, { expiresAt: T0 + 1_000 }),
      refresh: async (context) => {
        seen = await steps(engine).authorize({ url: `${API}/token`, signal: context.signal })
        return tokenSet(2)
      },
    })
    const got = track(engine.getToken())
    await flush()
    expect(got).toMatchObject({ status: 'fulfilled', value: tokenSet(2) })
    expect(seen).toBeUndefined()
    // Any other signal still gets the token.
    await expect(
      steps(engine).authorize({ url: `${API}/x`, signal: new AbortController().signal }),
    ).resolves.toBe(header(2))
  })

  it('uses the custom isAuthError, and survives one that throws', async () => {
    const logger = logSink()
    const { engine, refresh } = make({
      origins: [API],
      logger,
      isAuthError: (r) => {
        if (r.status === 500) throw new Error('bad predicate')
        return r.status === 419
      },
    })
    expect(steps(engine).isAuthError({ status: 419, headers: new Headers() })).toBe(true)
    expect(steps(engine).isAuthError({ status: 401, headers: new Headers() })).toBe(false)
    expect(steps(engine).isAuthError({ status: 500, headers: new Headers() })).toBe(false)
    expect(logger.error).toHaveBeenCalledTimes(1)
    const { run } = request(engine, { statusFor: () => 500 })
    await expect(run).resolves.toMatchObject({ status: 500 })
    expect(refresh.fn).not.toHaveBeenCalled()
  })
})

// ---------------------------------------------------------------------------------------------

describe('abort', () => {
  it("aborts only that waiter, at once, with the signal's reason; the refresh goes on for the others", async () => {
    const { engine, refresh } = make()
    const controller = new AbortController()
    const first = track(steps(engine).recover(header(1)))
    const aborted = track(steps(engine).recover(header(1), { signal: controller.signal }))
    const last = track(engine.getToken({ signal: new AbortController().signal }))
    const manual = track(engine.refresh({ signal: new AbortController().signal }))
    await flush()
    // getToken with a fresh token does not wait on the refresh.
    expect(last.status).toBe('fulfilled')
    const reason = new Error('caller gave up')
    controller.abort(reason)
    await flush()
    expect(aborted).toMatchObject({ status: 'rejected', reason })
    expect(first.status).toBe('pending')
    expect(manual.status).toBe('pending')
    refresh.pending[0]!.resolve(tokenSet(2))
    await flush()
    expect(first).toMatchObject({ status: 'fulfilled', value: header(2) })
    expect(manual).toMatchObject({ status: 'fulfilled', value: tokenSet(2) })
    expect(refresh.fn).toHaveBeenCalledTimes(1)
    await expect(engine.getToken()).resolves.toEqual(refreshed(2))
  })

  it('aborts the waiter that started the refresh without stopping it', async () => {
    const { engine, refresh } = make()
    const controller = new AbortController()
    const starter = track(steps(engine).recover(header(1), { signal: controller.signal }))
    const joiner = track(steps(engine).recover(header(1)))
    await flush()
    controller.abort()
    await flush()
    expect(starter.status).toBe('rejected')
    expect((starter.reason as Error).name).toBe('AbortError')
    expect(refresh.contexts[0]!.signal.aborted).toBe(false)
    refresh.pending[0]!.resolve(tokenSet(2))
    await flush()
    expect(joiner).toMatchObject({ status: 'fulfilled', value: header(2) })
  })

  it('rejects at once with an already-aborted signal, without a grant', async () => {
    const { engine, refresh } = make({ origins: [API], tokens: tokenSet(1, { expiresAt: T0 + 1 }) })
    const reason = new Error('already aborted')
    const signal = AbortSignal.abort(reason)
    await expect(engine.getToken({ signal })).rejects.toBe(reason)
    await expect(engine.refresh({ signal })).rejects.toBe(reason)
    await expect(steps(engine).recover(header(1), { signal })).rejects.toBe(reason)
    await expect(steps(engine).authorize({ url: `${API}/x`, signal })).rejects.toBe(reason)
    await expect(steps(engine).authorize({ url: `${API}/x` }, { signal })).rejects.toBe(reason)
    await expect(steps(engine).replay(async () => 1, { signal })).rejects.toBe(reason)
    expect(refresh.fn).not.toHaveBeenCalled()
  })

  it("aborts run() while it waits for the refresh, with the request's signal", async () => {
    const { engine, refresh } = make({ origins: [API] })
    const controller = new AbortController()
    const send = vi.fn(
      async (authorization: string | undefined): Promise<FakeResult> => ({
        status: 401,
        authorization,
        id: 1,
      }),
    )
    const discard = vi.fn()
    const run = track(
      steps(engine).run({
        url: `${API}/x`,
        send,
        response: toResponse,
        discard,
        signal: controller.signal,
      }),
    )
    await flush()
    expect(refresh.fn).toHaveBeenCalledTimes(1)
    const reason = new Error('stop')
    controller.abort(reason)
    await flush()
    expect(run).toMatchObject({ status: 'rejected', reason })
    expect(discard).toHaveBeenCalledTimes(1)
    expect(send).toHaveBeenCalledTimes(1)
  })
})

// ---------------------------------------------------------------------------------------------

describe('when the refresh fails', () => {
  const terminalCodes = ['invalid_grant', 'invalid_client', 'unauthorized_client'] as const
  const shapes = {
    OAuthError: (error: string) => new OAuthError({ error, errorDescription: 'nope', status: 400 }),
    'a ResponseBodyError-like object': (error: string) =>
      Object.assign(new Error('server responded with an error in the response body'), {
        name: 'ResponseBodyError',
        error,
        error_description: 'nope',
        status: 400,
      }),
  }

  describe.each(Object.entries(shapes))('terminal, thrown as %s', (_, shape) => {
    it.each(terminalCodes)(
      '%s ends the session once, clears the store and fails fast',
      async (code) => {
        const { store, typed, peek } = plainStore(tokenSet(1))
        const { engine, refresh, events } = make({ origins: [API], store: typed })
        const waiters = [
          track(steps(engine).recover(header(1))),
          track(steps(engine).recover(header(1))),
          track(engine.refresh()),
        ]
        await flush()
        const thrown = shape(code)
        refresh.pending[0]!.reject(thrown)
        await flush()
        for (const waiter of waiters) {
          expect(waiter.status).toBe('rejected')
          expect(waiter.reason).toBeInstanceOf(SessionExpiredError)
          expect(waiter.reason).toMatchObject({
            error: code,
            errorDescription: 'nope',
            status: 400,
          })
          // The cause is a copy of what was thrown that keeps what explains it, nothing else.
          expect((waiter.reason as Error).cause).toMatchObject({
            name: thrown.name,
            message: thrown.message,
            error: code,
            status: 400,
          })
        }
        expect(waiters[0]!.reason).toBe(waiters[1]!.reason)
        // The store keeps the end of the session (no tokens), for every engine on it.
        expect(store.clear).not.toHaveBeenCalled()
        expect(peek()).toEqual({
          ended: { error: code, errorDescription: 'nope', status: 400, at: expect.any(Number) },
        })
        expect(engine.stats()).toMatchObject({
          grants: 1,
          failures: 1,
          sessionsExpired: 1,
          joins: 2,
        })
        expect(events.of('sessionExpired')).toEqual([{ error: waiters[0]!.reason }])
        expect(events.of('refreshError')).toEqual([])

        // Later calls fail fast, without calling refresh.
        const later = [
          engine.getToken(),
          steps(engine).authorize({ url: `${API}/x` }),
          steps(engine).recover(header(1)),
          engine.refresh(),
        ]
        for (const call of later) {
          const error = await call.catch((e: unknown) => e)
          expect(isSessionExpiredError(error)).toBe(true)
          expect(error).toMatchObject({ error: code })
        }
        expect(refresh.fn).toHaveBeenCalledTimes(1)
        expect(events.of('sessionExpired')).toHaveLength(1)
        expect(engine.stats().sessionsExpired).toBe(1)

        // setTokens ends that state.
        await engine.setTokens(tokenSet(5))
        await expect(engine.getToken()).resolves.toEqual(tokenSet(5))
        await expect(steps(engine).authorize({ url: `${API}/x` })).resolves.toBe(header(5))
      },
    )
  })

  it('setTokens after an ended session starts a normal one: a later sign-out elsewhere is anonymous', async () => {
    const { store, typed } = plainStore(tokenSet(1))
    const { engine, refresh } = make({ store: typed })
    const waiter = track(steps(engine).recover(header(1)))
    await flush()
    refresh.pending[0]!.reject(new OAuthError({ error: 'invalid_grant' }))
    await flush()
    expect(waiter.reason).toBeInstanceOf(SessionExpiredError)
    await engine.setTokens(tokenSet(2))
    // The store is emptied by someone else (another tab signed out): no stale session error.
    store.clear()
    await expect(engine.getToken()).resolves.toBeUndefined()
  })

  it('removes the tokens from the store on a terminal failure, leaving the session end', async () => {
    const { typed, peek } = plainStore(tokenSet(1))
    const { engine, refresh } = make({ store: typed })
    const waiter = track(steps(engine).recover(header(1)))
    await flush()
    refresh.pending[0]!.reject(new OAuthError({ error: 'invalid_grant' }))
    await flush()
    expect(waiter.status).toBe('rejected')
    expect(isSessionEnd(peek())).toBe(true)
    expect(JSON.stringify(peek())).not.toContain(tokenSet(1).refreshToken)
  })

  it('adopts the newer set when invalid_grant comes after another process rotated the refresh token', async () => {
    const { store, typed, peek } = plainStore(tokenSet(1))
    const refresh = vi.fn<RefreshFunction>(async () => {
      // Another process won the race and rotated the refresh token first.
      store.set(tokenSet(2))
      throw new OAuthError({ error: 'invalid_grant', status: 400 })
    })
    const engine = createEngine({ refresh, store: typed })
    const events = record(engine)
    const waiters = [steps(engine).recover(header(1)), steps(engine).recover(header(1))]
    await expect(Promise.all(waiters)).resolves.toEqual([header(2), header(2)])
    expect(store.clear).not.toHaveBeenCalled()
    expect(peek()).toEqual(tokenSet(2))
    expect(refresh).toHaveBeenCalledTimes(1)
    expect(engine.stats()).toMatchObject({ adopted: 1, sessionsExpired: 0, grants: 1 })
    expect(events.of('sessionExpired')).toEqual([])
    expect(events.of('refresh')).toEqual([expect.objectContaining({ adopted: true })])
    await expect(engine.getToken()).resolves.toEqual(tokenSet(2))
  })

  it('keeps the tokens on a network error: retryable RefreshError with its cause, refreshError event', async () => {
    const { store, typed, peek } = plainStore(tokenSet(1))
    const { engine, refresh, events } = make({ store: typed })
    const waiters = [
      track(steps(engine).recover(header(1))),
      track(steps(engine).recover(header(1))),
    ]
    await flush()
    const cause = new TypeError('fetch failed')
    refresh.pending[0]!.reject(cause)
    await flush()
    for (const waiter of waiters) {
      expect(waiter.status).toBe('rejected')
      expect(isRefreshError(waiter.reason)).toBe(true)
      expect(waiter.reason).toMatchObject({ retryable: true, code: 'REFRESH_FAILED' })
      expect((waiter.reason as Error).cause).toBeInstanceOf(TypeError)
      expect((waiter.reason as Error).cause).toMatchObject({ message: 'fetch failed' })
    }
    expect(peek()).toEqual(tokenSet(1))
    expect(store.clear).not.toHaveBeenCalled()
    expect(events.of('refreshError')).toEqual([{ reason: 'reactive', error: waiters[0]!.reason }])
    expect(engine.stats()).toMatchObject({ failures: 1, sessionsExpired: 0 })
    // The next request may try again.
    const retry = steps(engine).recover(header(1))
    await flush()
    expect(refresh.fn).toHaveBeenCalledTimes(2)
    refresh.pending[1]!.resolve(tokenSet(2))
    await expect(retry).resolves.toBe(header(2))
  })

  it.each<[string, unknown]>([
    ['status: 503', { status: 503 }],
    ['response.status 503', { response: { status: 503, headers: new Headers() } }],
    ['OAuth error with 503', new OAuthError({ error: 'temporarily_unavailable', status: 503 })],
  ])('treats 5xx (%s) as retryable and keeps the tokens', async (_, thrown) => {
    const { engine, refresh, events } = make()
    const waiter = track(steps(engine).recover(header(1)))
    await flush()
    refresh.pending[0]!.reject(thrown)
    await flush()
    expect(waiter.reason).toBeInstanceOf(RefreshError)
    expect(waiter.reason).toMatchObject({ retryable: true, status: 503 })
    await expect(engine.getToken()).resolves.toEqual(tokenSet(1))
    expect(events.of('refreshError')).toHaveLength(1)
    expect(events.of('sessionExpired')).toHaveLength(0)
  })

  it.each<[string, () => unknown]>([
    [
      'Retry-After seconds in response headers',
      () => ({ response: { status: 429, headers: new Headers({ 'Retry-After': '2' }) } }),
    ],
    [
      'Retry-After HTTP date in response headers',
      () => ({
        status: 429,
        response: {
          status: 429,
          headers: new Headers({ 'retry-after': new Date(Date.now() + 2_000).toUTCString() }),
        },
      }),
    ],
    [
      'retryAfter on the error',
      () => new OAuthError({ error: 'slow_down', status: 429, retryAfter: 2_000 }),
    ],
  ])('respects 429 with %s: no grant until it passes', async (_, thrown) => {
    const { engine, refresh } = make()
    const first = track(steps(engine).recover(header(1)))
    await flush()
    refresh.pending[0]!.reject(thrown())
    await flush()
    expect(first.reason).toBeInstanceOf(RefreshError)
    expect(first.reason).toMatchObject({ retryable: true, status: 429, retryAfter: 2_000 })

    await vi.advanceTimersByTimeAsync(1_999)
    const early = await steps(engine)
      .recover(header(1))
      .catch((e: unknown) => e)
    expect(early).toBeInstanceOf(RefreshError)
    expect(early).toMatchObject({ retryable: true, retryAfter: 1 })
    // A proactive refresh is deferred as well, and the still-valid token is used.
    await expect(engine.refresh()).rejects.toBeInstanceOf(RefreshError)
    expect(refresh.fn).toHaveBeenCalledTimes(1)
    expect(engine.stats().grants).toBe(1)

    await vi.advanceTimersByTimeAsync(1)
    const recovered = steps(engine).recover(header(1))
    await flush()
    expect(refresh.fn).toHaveBeenCalledTimes(2)
    refresh.pending[1]!.resolve(tokenSet(2))
    await expect(recovered).resolves.toBe(header(2))
  })

  it('gives up after refreshTimeout: retryable RefreshError, and the context signal is aborted', async () => {
    const { engine, refresh, events } = make({ refreshTimeout: 5_000 })
    const waiters = [
      track(steps(engine).recover(header(1))),
      track(steps(engine).recover(header(1))),
    ]
    await flush()
    const { signal } = refresh.contexts[0]!
    await vi.advanceTimersByTimeAsync(4_999)
    expect(waiters.map((w) => w.status)).toEqual(['pending', 'pending'])
    expect(signal.aborted).toBe(false)
    await vi.advanceTimersByTimeAsync(1)
    await flush()
    for (const waiter of waiters) {
      expect(waiter.status).toBe('rejected')
      expect(waiter.reason).toBeInstanceOf(RefreshError)
      expect(waiter.reason).toMatchObject({ retryable: true })
      expect((waiter.reason as Error).message).toContain('5000 ms')
    }
    expect(signal.aborted).toBe(true)
    expect(signal.reason).toBe(waiters[0]!.reason)
    await expect(engine.getToken()).resolves.toEqual(tokenSet(1))
    expect(events.of('refreshError')).toHaveLength(1)
    // A late answer is ignored; a new request tries again.
    refresh.pending[0]!.resolve(tokenSet(9))
    const retry = steps(engine).recover(header(1))
    await flush()
    refresh.pending[1]!.resolve(tokenSet(2))
    await expect(retry).resolves.toBe(header(2))
  })

  it('uses the default refreshTimeout of 10 s', async () => {
    const { engine } = make()
    const waiter = track(steps(engine).recover(header(1)))
    await vi.advanceTimersByTimeAsync(9_999)
    expect(waiter.status).toBe('pending')
    await vi.advanceTimersByTimeAsync(1)
    await flush()
    expect(waiter.reason).toBeInstanceOf(RefreshError)
  })

  it.each<[string, unknown, string | undefined]>([
    ['an empty access token', { accessToken: '', tokenType: 'Bearer' }, 'accessToken'],
    ['token type mac', { accessToken: 'access-2-SECRET', tokenType: 'mac' }, 'tokenType'],
    [
      'a bad expiresAt',
      { accessToken: 'access-2-SECRET', tokenType: 'Bearer', expiresAt: '1' },
      'expiresAt',
    ],
    ['not an object', 'access-2-SECRET', undefined],
  ])(
    'rejects a refresh returning %s with a RefreshError naming the field',
    async (_, value, field) => {
      const { engine, refresh, events } = make()
      const waiter = track(steps(engine).recover(header(1)))
      await flush()
      refresh.pending[0]!.resolve(value as TokenSet)
      await flush()
      expect(waiter.reason).toBeInstanceOf(RefreshError)
      expect(waiter.reason).toMatchObject({ retryable: true, field })
      if (field) expect((waiter.reason as Error).message).toContain(`"${field}"`)
      expect((waiter.reason as Error).message).not.toContain('access-2-SECRET')
      await expect(engine.getToken()).resolves.toEqual(tokenSet(1))
      expect(events.of('refreshError')).toHaveLength(1)
    },
  )

  it('passes a malformed token response from parseTokenResponse through with its field', async () => {
    const { engine, events } = make({
      refresh: async ({ startedAt }) =>
        parseTokenResponse(
          { access_token: 'a', token_type: 'Bearer', expires_in: -5 },
          { sentAt: startedAt },
        ),
    })
    const error = await steps(engine)
      .recover(header(1))
      .catch((e: unknown) => e)
    expect(error).toBeInstanceOf(RefreshError)
    expect(error).toMatchObject({ retryable: true, field: 'expires_in' })
    expect(events.of('refreshError')[0]?.error).toBe(error)
    await expect(engine.getToken()).resolves.toEqual(tokenSet(1))
  })
})

// ---------------------------------------------------------------------------------------------

describe('store and lock', () => {
  it('two engines sharing a store and a lock make one grant; the other adopts', async () => {
    const store = createMemoryStore(tokenSet(1))
    const lock = createLocalLock()
    const refresh = controlledRefresh()
    const a = createEngine({ refresh: refresh.fn, store, lock })
    const b = createEngine({ refresh: refresh.fn, store, lock })
    const eventsB = record(b)
    const fromA = steps(a).recover(header(1))
    const fromB = steps(b).recover(header(1))
    await flush()
    expect(refresh.fn).toHaveBeenCalledTimes(1)
    refresh.pending[0]!.resolve(tokenSet(2))
    await expect(Promise.all([fromA, fromB])).resolves.toEqual([header(2), header(2)])
    await flush()
    expect(refresh.fn).toHaveBeenCalledTimes(1)
    expect(a.stats()).toMatchObject({ grants: 1, adopted: 0 })
    expect(b.stats()).toMatchObject({ grants: 0, adopted: 1 })
    expect(eventsB.of('refresh')).toEqual([
      expect.objectContaining({ adopted: true, reason: 'reactive' }),
    ])
  })

  it('two engines with a shared store and lock but no subscribe still adopt inside the lock', async () => {
    const { typed } = plainStore(tokenSet(1))
    const lock = createLocalLock()
    const refresh = controlledRefresh()
    const a = createEngine({ refresh: refresh.fn, store: typed, lock })
    const b = createEngine({ refresh: refresh.fn, store: typed, lock })
    const fromA = steps(a).recover(header(1))
    const fromB = steps(b).recover(header(1))
    await flush()
    refresh.pending[0]!.resolve(tokenSet(2))
    await expect(Promise.all([fromA, fromB])).resolves.toEqual([header(2), header(2)])
    expect(refresh.fn).toHaveBeenCalledTimes(1)
    expect(b.stats()).toMatchObject({ grants: 0, adopted: 1 })
  })

  it('passes lockKey to the lock', async () => {
    const keys: string[] = []
    const inner = createLocalLock()
    const lock: RefreshLock = {
      run(key, fn) {
        keys.push(key)
        return inner.run(key, fn)
      },
    }
    const { engine, refresh } = make({ lock, lockKey: 'tenant-7' })
    const p = engine.refresh()
    await flush()
    refresh.pending[0]!.resolve(tokenSet(2))
    await p
    const { engine: plain, refresh: plainRefresh } = make({ lock })
    const q = plain.refresh()
    await flush()
    plainRefresh.pending[0]!.resolve(tokenSet(2))
    await q
    expect(keys).toEqual(['tenant-7', 'reauth'])
  })

  function gatedLock() {
    const gate = deferred()
    const lock: RefreshLock = {
      async run(_key, fn) {
        await gate.promise
        return fn()
      },
    }
    return { gate, lock }
  }

  it('releases waiters as soon as the store announces newer tokens, before the lock is free', async () => {
    const store = createMemoryStore(tokenSet(1))
    const { gate, lock } = gatedLock()
    const { engine, refresh, events } = make({ store, lock })
    const waiters = [
      track(steps(engine).recover(header(1))),
      track(steps(engine).recover(header(1))),
      track(engine.refresh()),
    ]
    await flush()
    expect(waiters.map((w) => w.status)).toEqual(['pending', 'pending', 'pending'])
    // Another process refreshed and its store told us.
    store.set(tokenSet(2))
    await flush()
    expect(waiters.map((w) => w.value)).toEqual([header(2), header(2), tokenSet(2)])
    expect(refresh.fn).not.toHaveBeenCalled()
    // When the lock comes free, the double check finds the newer set: no grant.
    gate.resolve()
    await flush()
    expect(refresh.fn).not.toHaveBeenCalled()
    expect(engine.stats()).toMatchObject({ grants: 0, adopted: 1, joins: 2 })
    expect(events.of('refresh')).toEqual([expect.objectContaining({ adopted: true })])
  })

  it('ignores a store notification of tokens that expire within the leeway or are the same', async () => {
    const store = createMemoryStore(tokenSet(1))
    const { gate, lock } = gatedLock()
    const { engine, refresh } = make({ store, lock })
    const waiter = track(steps(engine).recover(header(1)))
    await flush()
    store.set(tokenSet(1, { scope: 'same access token' }))
    store.set(tokenSet(3, { expiresAt: T0 + 1_000 }))
    await flush()
    expect(waiter.status).toBe('pending')
    gate.resolve()
    await flush()
    expect(refresh.fn).toHaveBeenCalledTimes(1)
    refresh.pending[0]!.resolve(tokenSet(4))
    await flush()
    expect(waiter.value).toBe(header(4))
  })

  it('stops listening to the store after dispose()', async () => {
    const store = createMemoryStore(tokenSet(1))
    const { gate, lock } = gatedLock()
    const { engine, refresh } = make({ store, lock })
    engine.dispose()
    const waiter = track(steps(engine).recover(header(1)))
    await flush()
    store.set(tokenSet(2))
    await flush()
    expect(waiter.status).toBe('pending')
    gate.resolve()
    await flush()
    expect(waiter.value).toBe(header(2))
    expect(refresh.fn).not.toHaveBeenCalled()
  })

  it('reads the store for every decision: no second copy', async () => {
    const { store, typed } = plainStore(tokenSet(1))
    const { engine } = make({ store: typed, origins: [API] })
    await expect(steps(engine).authorize({ url: `${API}/x` })).resolves.toBe(header(1))
    store.set(tokenSet(7))
    await expect(steps(engine).authorize({ url: `${API}/x` })).resolves.toBe(header(7))
  })

  it('clear() signs out: later requests go without a token', async () => {
    const { engine } = make({ origins: [API] })
    await engine.clear()
    await expect(engine.getToken()).resolves.toBeUndefined()
    await expect(steps(engine).authorize({ url: `${API}/x` })).resolves.toBeUndefined()
    await expect(engine.refresh()).rejects.toBeInstanceOf(SessionExpiredError)
  })

  it('clear() after an expired session signs out too (regression: it kept failing fast)', async () => {
    const { engine, refresh } = make({ origins: [API] })
    const waiter = track(steps(engine).recover(header(1)))
    await flush()
    refresh.pending[0]!.reject(new OAuthError({ error: 'invalid_grant' }))
    await flush()
    expect(waiter.reason).toBeInstanceOf(SessionExpiredError)
    await expect(engine.getToken()).rejects.toBeInstanceOf(SessionExpiredError)
    await engine.clear()
    await expect(engine.getToken()).resolves.toBeUndefined()
    await expect(steps(engine).authorize({ url: `${API}/x` })).resolves.toBeUndefined()
  })
})

// ---------------------------------------------------------------------------------------------

describe('events and logging', () => {
  const SECRETS = [
    'access-1-SECRET',
    'refresh-1-SECRET',
    'id-1-SECRET',
    'access-2-SECRET',
    'refresh-2-SECRET',
    'id-2-SECRET',
  ]

  function scan(text: string) {
    for (const secret of SECRETS) expect(text).not.toContain(secret)
  }

  it('never puts a token value in a log line, an event payload or an error message', async () => {
    const logger = logSink()
    const { engine, refresh, events } = make({
      logger,
      origins: [API],
      tokens: tokenSet(1, { idToken: 'id-1-SECRET' }),
    })
    // A success.
    const ok = steps(engine).recover(header(1))
    await flush()
    refresh.pending[0]!.resolve(tokenSet(2, { idToken: 'id-2-SECRET' }))
    await ok
    // A transient failure whose foreign message quotes the tokens.
    const transient = steps(engine)
      .recover(header(2))
      .catch((e: unknown) => e)
    await flush()
    refresh.pending[1]!.reject(
      new TypeError('request with refresh-2-SECRET and access-2-SECRET failed'),
    )
    const transientError = await transient
    // An unreplayable request.
    await steps(engine).run({
      url: `${API}/upload?access_token=access-2-SECRET`,
      method: 'PUT',
      send: async (authorization) => ({ status: 401, authorization, id: 1 }),
      response: toResponse,
      replayable: () => 'stream body',
    })
    // A terminal failure.
    const terminal = steps(engine)
      .recover(header(2))
      .catch((e: unknown) => e)
    await flush()
    refresh.pending[2]!.reject(new OAuthError({ error: 'invalid_grant' }))
    const terminalError = await terminal

    const calls = [logger.debug, logger.info, logger.warn, logger.error].flatMap(
      (m) => m.mock.calls,
    )
    expect(calls.length).toBeGreaterThan(0)
    scan(JSON.stringify(calls))
    expect(events.all.map((e) => e.event)).toEqual(['refresh', 'refreshError', 'sessionExpired'])
    scan(JSON.stringify(events.all))
    for (const entry of events.all) {
      const error = (entry.payload as { error?: Error }).error
      if (error) scan(`${error.message} ${error.stack ?? ''}`)
    }
    for (const error of [transientError, terminalError] as Error[]) {
      scan(error.message)
      scan(JSON.stringify(error))
    }
    expect((transientError as Error).message).toContain('[redacted]')
  })

  it('does not let a throwing logger or listener break a request', async () => {
    const broken = () => {
      throw new Error('broken')
    }
    const { engine, refresh } = make({
      origins: [API],
      logger: { debug: broken, info: broken, warn: broken, error: broken },
    })
    const calls: string[] = []
    engine.on('refresh', () => {
      calls.push('refresh')
      throw new Error('listener broken')
    })
    engine.on('refreshError', () => {
      calls.push('refreshError')
      throw new Error('listener broken')
    })
    engine.on('sessionExpired', () => {
      calls.push('sessionExpired')
      throw new Error('listener broken')
    })
    const ok = steps(engine).recover(header(1))
    await flush()
    refresh.pending[0]!.resolve(tokenSet(2))
    await expect(ok).resolves.toBe(header(2))

    const transient = steps(engine).recover(header(2))
    await flush()
    refresh.pending[1]!.reject(new TypeError('offline'))
    await expect(transient).rejects.toBeInstanceOf(RefreshError)

    const terminal = steps(engine).recover(header(2))
    await flush()
    refresh.pending[2]!.reject(new OAuthError({ error: 'invalid_grant' }))
    await expect(terminal).rejects.toBeInstanceOf(SessionExpiredError)
    expect(calls).toEqual(['refresh', 'refreshError', 'sessionExpired'])

    await engine.setTokens(tokenSet(3))
    await expect(
      steps(engine).run({
        url: `${API}/x`,
        send: async (authorization) => ({ status: 401, authorization, id: 1 }),
        response: toResponse,
        replayable: () => 'nope',
      }),
    ).resolves.toMatchObject({ status: 401 })
  })

  it('unsubscribes a listener', async () => {
    const { engine, refresh } = make()
    const listener = vi.fn()
    const off = engine.on('refresh', listener)
    off()
    const p = engine.refresh()
    await flush()
    refresh.pending[0]!.resolve(tokenSet(2))
    await p
    expect(listener).not.toHaveBeenCalled()
  })

  it('reports durationMs on the refresh event and returns a snapshot from stats()', async () => {
    const { engine, refresh, events } = make()
    const snapshot = engine.stats()
    const p = engine.refresh()
    await flush()
    await vi.advanceTimersByTimeAsync(1_234)
    refresh.pending[0]!.resolve(tokenSet(2))
    await p
    expect(events.of('refresh')[0]?.durationMs).toBe(1_234)
    expect(snapshot.grants).toBe(0)
    expect(engine.stats()).toEqual({
      grants: 1,
      proactive: 0,
      background: 0,
      joins: 0,
      adopted: 0,
      staleRetries: 0,
      replays: 0,
      authErrors: 0,
      unreplayable: 0,
      failures: 0,
      sessionsExpired: 0,
    })
  })
})
