import { inspect } from 'node:util'
import { describe, expect, it, vi } from 'vitest'
import { steps } from '../../../test/support/steps.js'
import { createEngine, type Engine } from './engine.js'
import { isRefreshError, isSessionExpiredError, OAuthError, SessionExpiredError } from './errors.js'
import { MAX_RETRY_AFTER_MS, parseRetryAfter } from './failure.js'
import { createMemoryStore } from './memory-store.js'
import { createOriginMatcher } from './origins.js'
import { isSessionEnd, parseTokenResponse } from './token-set.js'
import type { RefreshFunction, TokenSet } from './types.js'

const API = 'https://api.example.com'

function initial(): TokenSet {
  return { accessToken: 'at-0', tokenType: 'Bearer', refreshToken: 'rt-0' }
}

/**
 * A token endpoint that rotates with reuse detection, as real servers do: each refresh token
 * is good once; presenting a spent one revokes the family (`invalid_grant` from then on).
 * `body(n)` shapes the n-th 2xx response.
 */
function rotatingServer(body: (n: number, fresh: { at: string; rt: string }) => unknown) {
  const live = new Set(['rt-0'])
  const spent = new Set<string>()
  let revoked = false
  let issued = 0
  const seen = { grants: 0, reused: 0 }
  const refresh: RefreshFunction = async ({ tokens }) => {
    seen.grants++
    const presented = tokens.refreshToken ?? ''
    if (spent.has(presented)) {
      seen.reused++
      revoked = true
    }
    if (revoked || !live.has(presented)) {
      throw new OAuthError({ error: 'invalid_grant', status: 400 })
    }
    live.delete(presented)
    spent.add(presented)
    issued++
    const fresh = { at: `at-${issued}`, rt: `rt-${issued}` }
    live.add(fresh.rt)
    return parseTokenResponse(body(issued, fresh), { sentAt: Date.now() })
  }
  return { refresh, seen }
}

const good = (fresh: { at: string; rt: string }) => ({
  access_token: fresh.at,
  token_type: 'Bearer',
  expires_in: 3600,
  refresh_token: fresh.rt,
})

describe('a new refresh token is never thrown away', () => {
  it.each([
    ['a non-numeric expires_in', { expires_in: 'soon' }],
    ['a negative expires_in', { expires_in: -1 }],
    ['an absurd expires_in', { expires_in: 1e10 }],
    ['no token_type', { token_type: undefined }],
    ['an unknown token_type', { token_type: 'mac' }],
    ['an empty access_token', { access_token: '' }],
  ])(
    'a 2xx with a new refresh token and %s: stored, and the next grant presents it (0 reuse)',
    async (_, change) => {
      const server = rotatingServer((n, fresh) =>
        n === 1 ? { ...good(fresh), ...change } : good(fresh),
      )
      const store = createMemoryStore(initial())
      const engine = createEngine({ refresh: server.refresh, store })
      const first = await engine.refresh().catch((e: unknown) => e)
      expect(isRefreshError(first)).toBe(true)
      expect(inspect(first, { showHidden: true, depth: 20 })).not.toContain('rt-1')
      // The rest of the old set is kept; the spent refresh token is not.
      expect(store.get()).toMatchObject({ accessToken: 'at-0', refreshToken: 'rt-1' })
      await expect(engine.refresh()).resolves.toMatchObject({
        accessToken: 'at-2',
        refreshToken: 'rt-2',
      })
      expect(server.seen).toEqual({ grants: 2, reused: 0 })
    },
  )

  it('a numeric string expires_in is accepted: no failure at all', async () => {
    const server = rotatingServer((_, fresh) => ({ ...good(fresh), expires_in: '3600' }))
    const engine = createEngine({ refresh: server.refresh, tokens: initial() })
    const tokens = await engine.refresh()
    expect(tokens.expiresAt).toBeGreaterThan(Date.now() + 3_500_000)
  })

  it('a hand-written refresh function that returns an invalid set with a new refresh token: stored', async () => {
    const store = createMemoryStore(initial())
    const refresh = vi.fn<RefreshFunction>(async ({ tokens }) =>
      tokens.refreshToken === 'rt-0'
        ? ({ accessToken: '', tokenType: 'Bearer', refreshToken: 'rt-1' } as TokenSet)
        : { accessToken: 'at-2', tokenType: 'Bearer', refreshToken: 'rt-2' },
    )
    const engine = createEngine({ refresh, store })
    await expect(engine.refresh()).rejects.toMatchObject({ field: 'accessToken' })
    expect(store.get()).toMatchObject({ accessToken: 'at-0', refreshToken: 'rt-1' })
    await engine.refresh()
    expect(refresh.mock.calls.map(([context]) => context.tokens.refreshToken)).toEqual([
      'rt-0',
      'rt-1',
    ])
  })
})

/** What users' own clients throw for a 400 `invalid_grant`, as each client shapes it. */
function clientErrors(body: Record<string, string>, status = 400) {
  const json = JSON.stringify(body)
  const request = { method: 'POST', url: 'https://issuer.example/token' }
  const secretBody = 'grant_type=refresh_token&refresh_token=rt-0'
  return {
    'an AxiosError (response.data)': Object.assign(
      new Error(`Request failed with status code ${status}`),
      {
        name: 'AxiosError',
        isAxiosError: true,
        code: 'ERR_BAD_REQUEST',
        config: { data: secretBody, headers: { Authorization: 'Basic c2VjcmV0' } },
        request: { _header: `POST /token\r\n\r\n${secretBody}` },
        response: { status, data: body, headers: { 'content-type': 'application/json' } },
      },
    ),
    'a ky 1 HTTPError (unread response)': Object.assign(
      new Error(`Request failed with status code ${status}: POST ${request.url}`),
      {
        name: 'HTTPError',
        response: new Response(json, { status, headers: { 'content-type': 'application/json' } }),
        request: new Request(request.url, { method: 'POST', body: secretBody }),
        options: { body: secretBody, method: 'POST' },
      },
    ),
    'a ky 2 HTTPError (parsed data)': Object.assign(
      new Error(`Request failed with status code ${status}: POST ${request.url}`),
      {
        name: 'HTTPError',
        data: body,
        response: new Response(null, { status }),
        options: { body: secretBody, method: 'POST' },
      },
    ),
    'a fetch Response': new Response(json, {
      status,
      headers: { 'content-type': 'application/json' },
    }),
  }
}

describe("errors from the user's own client are read like any other", () => {
  it.each(Object.entries(clientErrors({ error: 'invalid_grant', error_description: 'gone' })))(
    'invalid_grant as %s ends the session, and no token is reachable from the error',
    async (_, thrown) => {
      const refresh = vi.fn<RefreshFunction>(async () => {
        throw thrown
      })
      const engine = createEngine({ refresh, tokens: initial() })
      const expired = vi.fn()
      engine.on('sessionExpired', expired)
      const error = await engine.refresh().catch((e: unknown) => e)
      expect(isSessionExpiredError(error)).toBe(true)
      expect(error).toMatchObject({ error: 'invalid_grant', errorDescription: 'gone', status: 400 })
      expect(expired).toHaveBeenCalledTimes(1)
      const printed = inspect(error, { showHidden: true, depth: 30 })
      expect(printed).not.toContain('rt-0')
      expect(printed).not.toContain('c2VjcmV0')
      expect(printed).not.toContain('at-0')
      // Later calls fail fast: no second grant with the dead refresh token.
      await expect(engine.getToken()).rejects.toBeInstanceOf(SessionExpiredError)
      expect(refresh).toHaveBeenCalledTimes(1)
    },
  )

  it.each([
    [400, false],
    [401, false],
    [404, false],
    [408, true],
    [429, true],
    [503, true],
  ])('HTTP %i without a §5.2 code: retryable is %s', async (status, retryable) => {
    const thrown = new Response('<html>nope</html>', { status })
    const engine = createEngine({
      refresh: async () => {
        throw thrown
      },
      tokens: initial(),
    })
    await expect(engine.refresh()).rejects.toMatchObject({ status, retryable })
  })
})

describe('every engine on a shared store learns that the session ended', () => {
  function pair() {
    const store = createMemoryStore(initial())
    const refresh = vi.fn<RefreshFunction>(async () => {
      throw new OAuthError({ error: 'invalid_grant', status: 400 })
    })
    const a = createEngine({ refresh, store, origins: [API] })
    const b = createEngine({ refresh, store, origins: [API] })
    const events = { a: vi.fn(), b: vi.fn() }
    a.on('sessionExpired', events.a)
    b.on('sessionExpired', events.b)
    return { store, refresh, a, b, events }
  }

  async function expectEnded(engine: Engine) {
    await expect(engine.getToken()).rejects.toBeInstanceOf(SessionExpiredError)
    await expect(steps(engine).authorize({ url: `${API}/me` })).rejects.toMatchObject({
      error: 'invalid_grant',
    })
    await expect(engine.refresh()).rejects.toBeInstanceOf(SessionExpiredError)
  }

  it("B fails fast with SessionExpiredError and fires sessionExpired once (through the store's subscribe)", async () => {
    const { store, refresh, a, b, events } = pair()
    await expect(a.refresh()).rejects.toBeInstanceOf(SessionExpiredError)
    expect(isSessionEnd(store.get())).toBe(true)
    expect(events.a).toHaveBeenCalledTimes(1)
    expect(events.b).toHaveBeenCalledTimes(1)
    expect(events.b.mock.calls[0]?.[0].error).toMatchObject({ error: 'invalid_grant', status: 400 })
    await expectEnded(a)
    await expectEnded(b)
    expect(events.a).toHaveBeenCalledTimes(1)
    expect(events.b).toHaveBeenCalledTimes(1)
    expect(refresh).toHaveBeenCalledTimes(1)
    expect(b.stats().sessionsExpired).toBe(1)
    // setTokens on either ends it for both.
    await b.setTokens({ accessToken: 'at-9', tokenType: 'Bearer', refreshToken: 'rt-9' })
    await expect(steps(a).authorize({ url: `${API}/me` })).resolves.toBe('Bearer at-9')
  })

  it('a store without subscribe: B learns it on its next read', async () => {
    const memory = createMemoryStore(initial())
    const store = { get: memory.get, set: memory.set, clear: memory.clear }
    const refresh: RefreshFunction = async () => {
      throw new OAuthError({ error: 'invalid_grant', status: 400 })
    }
    const a = createEngine({ refresh, store })
    const b = createEngine({ refresh, store, origins: [API] })
    const expired = vi.fn()
    b.on('sessionExpired', expired)
    await expect(a.refresh()).rejects.toBeInstanceOf(SessionExpiredError)
    expect(expired).not.toHaveBeenCalled()
    await expect(steps(b).authorize({ url: `${API}/me` })).rejects.toBeInstanceOf(
      SessionExpiredError,
    )
    await expect(b.getToken()).rejects.toBeInstanceOf(SessionExpiredError)
    expect(expired).toHaveBeenCalledTimes(1)
  })

  it('a sign-out (clear) is not an ended session: both go anonymous', async () => {
    const { a, b } = pair()
    await a.clear()
    await expect(b.getToken()).resolves.toBeUndefined()
    await expect(steps(b).authorize({ url: `${API}/me` })).resolves.toBeUndefined()
  })
})

describe('Retry-After is bounded', () => {
  const now = Date.UTC(2030, 0, 1)
  it.each([
    ['400 digits', '9'.repeat(400), undefined],
    ['ten years of seconds', '315360000', MAX_RETRY_AFTER_MS],
    ['a date in year 9999', 'Fri, 31 Dec 9999 23:59:59 GMT', MAX_RETRY_AFTER_MS],
    ['Infinity', Number.POSITIVE_INFINITY, undefined],
    ['a negative number', -5, undefined],
    ['2 seconds', '2', 2_000],
  ])('%s → %s', (_, value, expected) => {
    expect(parseRetryAfter(value, now)).toBe(expected)
  })

  it('a 503 with a Retry-After of ten years defers refreshing by at most an hour', async () => {
    vi.useFakeTimers({ now })
    try {
      let calls = 0
      const engine = createEngine({
        refresh: async () => {
          calls++
          if (calls === 1) throw { status: 503, retryAfter: '315360000' }
          return { accessToken: 'at-1', tokenType: 'Bearer', refreshToken: 'rt-1' }
        },
        tokens: initial(),
      })
      await expect(engine.refresh()).rejects.toMatchObject({ retryAfter: MAX_RETRY_AFTER_MS })
      await expect(engine.refresh()).rejects.toMatchObject({ retryable: true })
      expect(calls).toBe(1)
      vi.advanceTimersByTime(MAX_RETRY_AFTER_MS + 1)
      await expect(engine.refresh()).resolves.toMatchObject({ accessToken: 'at-1' })
    } finally {
      vi.useRealTimers()
    }
  })
})

describe('origins', () => {
  it.each([/^https:\/\/api\.example\.com$/g, /^https:\/\/api\.example\.com$/y])(
    'a stateful RegExp (%s) matches every time',
    (pattern) => {
      const allowed = createOriginMatcher([pattern])
      const url = new URL(`${API}/me`)
      expect([1, 2, 3, 4].map(() => allowed(url))).toEqual([true, true, true, true])
    },
  )
})

describe('what another engine wrote meanwhile wins (review findings)', () => {
  function gate<T>() {
    let open!: (value: T) => void
    let fail!: (error: unknown) => void
    const promise = new Promise<T>((resolve, reject) => {
      open = resolve
      fail = reject
    })
    return { promise, open, fail }
  }

  it('a sign-out elsewhere during a grant that then fails terminally stays a sign-out (no session end)', async () => {
    const store = createMemoryStore(initial())
    const answer = gate<TokenSet>()
    const refresh = vi.fn<RefreshFunction>(() => answer.promise)
    const a = createEngine({ refresh, store, origins: [API] })
    const b = createEngine({ refresh, store, origins: [API] })
    const expired = { a: vi.fn(), b: vi.fn() }
    a.on('sessionExpired', expired.a)
    b.on('sessionExpired', expired.b)
    const pending = a.refresh().catch((e: unknown) => e)
    // The grant is out at the server when the user signs out through B.
    await vi.waitFor(() => expect(refresh).toHaveBeenCalledTimes(1))
    await b.clear()
    answer.fail(new OAuthError({ error: 'invalid_grant', status: 400 }))
    expect(isSessionExpiredError(await pending)).toBe(true)
    expect(store.get()).toBeUndefined()
    await expect(b.getToken()).resolves.toBeUndefined()
    await expect(a.getToken()).resolves.toBeUndefined()
    expect(expired.a).not.toHaveBeenCalled()
    expect(expired.b).not.toHaveBeenCalled()
  })

  it('two overlapping terminal failures end the session once per engine', async () => {
    const store = createMemoryStore(initial())
    const answers = [gate<TokenSet>(), gate<TokenSet>()]
    let call = 0
    const refresh = () => (answers[call++] as ReturnType<typeof gate<TokenSet>>).promise
    // No shared lock: the grants overlap (as when a distributed lock's lease ran out).
    const a = createEngine({ refresh, store })
    const b = createEngine({ refresh, store })
    const expired = { a: vi.fn(), b: vi.fn() }
    a.on('sessionExpired', expired.a)
    b.on('sessionExpired', expired.b)
    const both = [a.refresh().catch((e: unknown) => e), b.refresh().catch((e: unknown) => e)]
    await vi.waitFor(() => expect(call).toBe(2))
    for (const answer of answers)
      answer.fail(new OAuthError({ error: 'invalid_grant', status: 400 }))
    for (const outcome of await Promise.all(both)) expect(isSessionExpiredError(outcome)).toBe(true)
    expect(expired.a).toHaveBeenCalledTimes(1)
    expect(expired.b).toHaveBeenCalledTimes(1)
  })

  it('an engine that adopted the end goes anonymous after a sign-in then a sign-out elsewhere', async () => {
    const memory = createMemoryStore(initial())
    // No subscribe: B learns only by reading.
    const store = { get: memory.get, set: memory.set, clear: memory.clear }
    const refresh: RefreshFunction = async () => {
      throw new OAuthError({ error: 'invalid_grant', status: 400 })
    }
    const a = createEngine({ refresh, store, origins: [API] })
    const b = createEngine({ refresh, store, origins: [API] })
    await expect(a.refresh()).rejects.toBeInstanceOf(SessionExpiredError)
    await expect(b.getToken()).rejects.toBeInstanceOf(SessionExpiredError)
    await a.setTokens({ accessToken: 'at-9', tokenType: 'Bearer', refreshToken: 'rt-9' })
    await a.clear()
    await expect(b.getToken()).resolves.toBeUndefined()
    await expect(steps(b).authorize({ url: `${API}/me` })).resolves.toBeUndefined()
  })

  it('a rotated refresh token of a failed response never overwrites a sign-in made meanwhile', async () => {
    const store = createMemoryStore(initial())
    const answer = gate<unknown>()
    const refresh = vi.fn<RefreshFunction>(async ({ startedAt }) =>
      parseTokenResponse(await answer.promise, { sentAt: startedAt }),
    )
    const a = createEngine({ refresh, store })
    const b = createEngine({ refresh: async () => initial(), store })
    const pending = a.refresh().catch((e: unknown) => e)
    await vi.waitFor(() => expect(refresh).toHaveBeenCalledTimes(1))
    await b.setTokens({
      accessToken: 'at-new-session',
      tokenType: 'Bearer',
      refreshToken: 'rt-new',
    })
    answer.open({ access_token: 'x', token_type: 'mac', refresh_token: 'rt-old-session-rotated' })
    await pending
    expect(store.get()).toMatchObject({ accessToken: 'at-new-session', refreshToken: 'rt-new' })
  })

  it('a server that echoes the refresh token in error_description: redacted in the error and the stored end', async () => {
    const store = createMemoryStore(initial())
    const engine = createEngine({
      refresh: async () => {
        throw new OAuthError({
          error: 'invalid_grant',
          errorDescription: 'refresh token rt-0 is revoked',
          status: 400,
        })
      },
      store,
    })
    const error = await engine.refresh().catch((e: unknown) => e)
    expect(inspect(error, { showHidden: true, depth: 30 })).not.toMatch(/\brt-0\b/)
    expect(JSON.stringify(store.get())).not.toMatch(/\brt-0\b/)
  })

  it('a refresh function that hands back a set still inside the window does not grant on every request', async () => {
    const now = Date.now()
    const cached: TokenSet = {
      accessToken: 'at-cached',
      tokenType: 'Bearer',
      refreshToken: 'rt-0',
      issuedAt: now - 3_590_000,
      expiresAt: now + 10_000,
    }
    const refresh = vi.fn<RefreshFunction>(async () => cached)
    const engine = createEngine({ refresh, tokens: cached, origins: [API] })
    for (let i = 0; i < 50; i++) {
      await steps(engine).authorize({ url: `${API}/me` })
      await new Promise((resolve) => setImmediate(resolve))
    }
    expect(refresh.mock.calls.length).toBeLessThanOrEqual(1)
  })
})
