/**
 * Client credentials (`acquire`), sign-out with revocation (`revoke`) and per-resource tokens
 * (`resources`, RFC 8707) at the engine, with fake timers and a fake rotating server.
 */
import { inspect } from 'node:util'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { deferred } from '../../../test/support/deferred.js'
import { steps } from '../../../test/support/steps.js'
import { createEngine, type Engine } from './engine.js'
import { OAuthError, SessionExpiredError } from './errors.js'
import { createMemoryStore } from './memory-store.js'
import type { AcquireFunction, RefreshFunction, TokenSet } from './types.js'

const T0 = Date.UTC(2030, 0, 1, 12)
const API = 'https://api.example.com'
const ORDERS = 'https://orders.example.com'
const BILLING = 'https://billing.example.com'

async function flush(times = 20) {
  for (let i = 0; i < times; i++) await Promise.resolve()
}

beforeEach(() => {
  vi.useFakeTimers({ now: T0 })
})
afterEach(() => {
  vi.useRealTimers()
})

describe('acquire (client credentials)', () => {
  function service(ttl = 3_600_000) {
    let n = 0
    const gate = { open: deferred<void>() }
    const acquire = vi.fn<AcquireFunction>(async ({ startedAt }) => {
      await gate.open.promise
      n++
      return { accessToken: `cc-${n}`, tokenType: 'Bearer', expiresAt: startedAt + ttl }
    })
    return { acquire, gate }
  }

  it('1 000 concurrent first requests make one token request, and all carry its token', async () => {
    const { acquire, gate } = service()
    const engine = createEngine({ acquire, origins: [API] })
    const headers = Array.from({ length: 1_000 }, () =>
      steps(engine).authorize({ url: `${API}/x` }),
    )
    await flush()
    expect(acquire).toHaveBeenCalledTimes(1)
    gate.open.resolve()
    expect(new Set(await Promise.all(headers))).toEqual(new Set(['Bearer cc-1']))
    expect(engine.stats()).toMatchObject({ grants: 1 })
    expect((await engine.getToken())?.refreshToken).toBeUndefined()
  })

  it('renews ahead of expiry and after a 401 with acquire, keeping no refresh token', async () => {
    const { acquire, gate } = service(120_000)
    gate.open.resolve()
    const engine = createEngine({ acquire, origins: [API] })
    expect(await steps(engine).authorize({ url: `${API}/x` })).toBe('Bearer cc-1')
    // a 401 for the current token: one new acquisition
    expect(await steps(engine).recover('Bearer cc-1')).toBe('Bearer cc-2')
    // inside the refresh-ahead window (half the lifetime): sent at once, renewed in the background
    vi.setSystemTime(Date.now() + 61_000)
    expect(await steps(engine).authorize({ url: `${API}/x` })).toBe('Bearer cc-2')
    await flush()
    expect(acquire).toHaveBeenCalledTimes(3)
    expect(await steps(engine).authorize({ url: `${API}/x` })).toBe('Bearer cc-3')
    expect((await engine.getToken())?.refreshToken).toBeUndefined()
  })

  it('invalid_client ends it like a terminal failure: fail fast, sessionExpired once', async () => {
    const acquire = vi.fn<AcquireFunction>(async () => {
      throw new OAuthError({ error: 'invalid_client', status: 401 })
    })
    const engine = createEngine({ acquire, origins: [API] })
    const expired = vi.fn()
    engine.on('sessionExpired', expired)
    const first = await steps(engine)
      .authorize({ url: `${API}/x` })
      .catch((error: unknown) => error)
    expect(first).toBeInstanceOf(SessionExpiredError)
    await expect(steps(engine).authorize({ url: `${API}/x` })).rejects.toBeInstanceOf(
      SessionExpiredError,
    )
    expect(acquire).toHaveBeenCalledTimes(1)
    expect(expired).toHaveBeenCalledTimes(1)
  })

  it('an engine needs refresh or acquire', () => {
    expect(() => createEngine({} as never)).toThrow('"refresh" must be a function')
    expect(() => createEngine({ acquire: 'x' } as never)).toThrow('"acquire" must be a function')
  })
})

describe('clear() with revoke (RFC 7009)', () => {
  const tokens: TokenSet = {
    accessToken: 'at-1',
    tokenType: 'Bearer',
    refreshToken: 'rt-secret-1',
    expiresAt: T0 + 3_600_000,
  }

  it('clears locally first, then revokes the signed-in tokens', async () => {
    const order: string[] = []
    const store = createMemoryStore(tokens)
    const clear = store.clear.bind(store)
    store.clear = () => {
      order.push('clear')
      return clear()
    }
    const revoke = vi.fn(async ({ tokens: revoked }: { tokens: TokenSet }) => {
      order.push(`revoke ${revoked.refreshToken}`)
    })
    const engine = createEngine({ refresh: vi.fn(), store, revoke })
    const signOut = vi.fn()
    engine.on('signOut', signOut)
    await engine.clear()
    expect(order).toEqual(['clear', 'revoke rt-secret-1'])
    expect(signOut).toHaveBeenCalledWith({ revoked: true })
    expect(await engine.getToken()).toBeUndefined()
  })

  it('a failed revocation never fails the sign-out: logged and reported, no token in it', async () => {
    const warn = vi.fn()
    const engine = createEngine({
      refresh: vi.fn(),
      tokens,
      logger: { warn },
      revoke: async () => {
        throw new Error('revocation of rt-secret-1 failed')
      },
    })
    const signOut = vi.fn()
    engine.on('signOut', signOut)
    await expect(engine.clear()).resolves.toBeUndefined()
    expect(await engine.getToken()).toBeUndefined()
    const { error } = (signOut.mock.calls[0]?.[0] ?? {}) as { revoked?: boolean; error?: Error }
    expect(signOut.mock.calls[0]?.[0]).toMatchObject({ revoked: false })
    expect(inspect(error, { depth: 10 })).not.toContain('rt-secret-1')
    expect(JSON.stringify(warn.mock.calls)).not.toContain('rt-secret-1')
    expect(warn).toHaveBeenCalled()
  })

  it('a refresh in flight is cancelled and cannot store tokens afterwards', async () => {
    let signal: AbortSignal | undefined
    const late = deferred<TokenSet>()
    const refresh = vi.fn<RefreshFunction>(async (context) => {
      signal = context.signal
      return late.promise
    })
    const store = createMemoryStore({ ...tokens, expiresAt: T0 - 1 })
    const engine = createEngine({ refresh, store, revoke: async () => {}, origins: [API] })
    const waiting = steps(engine)
      .authorize({ url: `${API}/x` })
      .catch((error: unknown) => error)
    await flush()
    expect(refresh).toHaveBeenCalledTimes(1)
    await engine.clear()
    expect(signal?.aborted).toBe(true)
    expect(await waiting).toBeInstanceOf(SessionExpiredError)
    late.resolve({ accessToken: 'at-late', tokenType: 'Bearer', refreshToken: 'rt-late' })
    await flush()
    expect(await store.get()).toBeUndefined()
  })
})

describe('resources (RFC 8707)', () => {
  /** A rotating server: each refresh token works once; a token is minted for the resource asked. */
  function server() {
    let n = 0
    let current = 'rt-0'
    const presented: string[] = []
    let reuse = 0
    const refresh = vi.fn<RefreshFunction>(async ({ tokens, resource, startedAt }) => {
      const token = tokens.refreshToken as string
      presented.push(token)
      if (token !== current) reuse++
      n++
      current = `rt-${n}`
      return {
        accessToken: `at-${n}@${resource ?? 'default'}`,
        tokenType: 'Bearer',
        refreshToken: current,
        expiresAt: startedAt + 3_600_000,
      }
    })
    return {
      refresh,
      presented,
      get reuse() {
        return reuse
      },
    }
  }

  function engineWith(refresh: RefreshFunction): Engine {
    return createEngine({
      refresh,
      tokens: {
        accessToken: 'at-0',
        tokenType: 'Bearer',
        refreshToken: 'rt-0',
        expiresAt: T0 + 3_600_000,
      },
      resources: { [ORDERS]: 'https://orders.example.com/api', [BILLING]: 'urn:billing' },
      origins: [API],
    })
  }

  it('a storm across three origins: one grant per resource, never the same refresh token twice, each API its own token', async () => {
    const fake = server()
    const engine = engineWith(fake.refresh)
    const urls = [`${ORDERS}/o`, `${BILLING}/b`, `${API}/me`]
    const headers = await Promise.all(
      Array.from({ length: 300 }, (_, i) =>
        steps(engine).authorize({ url: urls[i % 3] as string }),
      ),
    )
    expect(fake.refresh).toHaveBeenCalledTimes(2)
    expect(fake.reuse).toBe(0)
    expect(new Set(fake.presented).size).toBe(fake.presented.length)
    for (const [i, header] of headers.entries()) {
      const url = urls[i % 3] as string
      if (url.startsWith(ORDERS)) expect(header).toMatch(/@https:\/\/orders\.example\.com\/api$/)
      else if (url.startsWith(BILLING)) expect(header).toMatch(/@urn:billing$/)
      else expect(header).toBe('Bearer at-0')
    }
    const stored = await engine.getToken()
    expect(Object.keys(stored?.resources ?? {}).sort()).toEqual([
      'https://orders.example.com/api',
      'urn:billing',
    ])
  })

  it('a 401 from one resource refreshes that resource only, on the latest refresh token', async () => {
    const fake = server()
    const engine = engineWith(fake.refresh)
    const orders = (await steps(engine).authorize({ url: `${ORDERS}/o` })) as string
    await steps(engine).authorize({ url: `${BILLING}/b` })
    const next = await steps(engine).run({
      url: `${ORDERS}/o`,
      send: async (authorization) => (authorization === orders ? 401 : 200),
      response: (status: number) => ({ status, headers: { get: () => null } }),
    })
    expect(next).toBe(200)
    expect(fake.presented).toEqual(['rt-0', 'rt-1', 'rt-2'])
    expect(fake.reuse).toBe(0)
    expect(fake.refresh.mock.calls.map(([context]) => context.resource)).toEqual([
      'https://orders.example.com/api',
      'urn:billing',
      'https://orders.example.com/api',
    ])
    // billing's token is untouched by the orders refresh
    expect(await steps(engine).authorize({ url: `${BILLING}/b` })).toBe('Bearer at-2@urn:billing')
  })

  it('rejects a resources map it cannot use', () => {
    expect(() => createEngine({ refresh: vi.fn(), resources: { 'not a url': 'urn:x' } })).toThrow(
      '"resources" key',
    )
    expect(() =>
      createEngine({ refresh: vi.fn(), resources: { [ORDERS]: 'https://x.example/#frag' } }),
    ).toThrow('without a fragment')
  })
})
