/**
 * End to end against a real OpenID Provider (oidc-provider, in process on 127.0.0.1) and a
 * protected API that introspects every token with it. The sign-in is a real authorization
 * code + PKCE + offline_access flow over HTTP, so the refresh tokens are real and rotate;
 * oidc-provider revokes the whole grant when a rotated refresh token is reused, so any
 * duplicate refresh shows up as a revoked grant and failed requests.
 *
 * Time: only `Date` is faked, which moves the provider's clock (token expiry) and the
 * engine's together; nothing waits for real time.
 */
import {
  createEngine,
  createMemoryStore,
  type Engine,
  isRefreshError,
  isSessionEnd,
  isSessionExpiredError,
  type TokenStore,
} from '@reauth/core'
import { createRefreshGrant } from '@reauth/oauth'
import {
  clientOptions,
  type RunningApi,
  type RunningProvider,
  signInOverHttp,
  startApi,
  startProvider,
} from '@reauth/testbed'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { type Harness, harnesses, type TestClient } from '../support/harness.js'

const TTL = 30
let provider: RunningProvider
let api: RunningApi

beforeAll(async () => {
  provider = await startProvider({ accessTokenTtl: TTL })
  api = await startApi({ issuer: provider.issuer })
})
afterAll(async () => {
  await api?.stop()
  await provider?.stop()
})
afterEach(() => {
  vi.useRealTimers()
})

/** A store that forgets `expiresAt`: the engine cannot refresh proactively and meets real 401s. */
function storeWithoutExpiry(): TokenStore {
  const inner = createMemoryStore()
  return {
    get: inner.get,
    clear: inner.clear,
    set: (tokens) => {
      if (isSessionEnd(tokens)) return inner.set(tokens)
      const { expiresAt: _expiresAt, issuedAt: _issuedAt, ...rest } = tokens
      return inner.set(rest)
    },
  }
}

async function session(options: { reactive?: boolean } = {}): Promise<Engine> {
  const tokens = await signInOverHttp(provider.issuer)
  const refresh = createRefreshGrant(clientOptions(provider.issuer))
  if (!options.reactive) return createEngine({ tokens, refresh })
  const engine = createEngine({ store: storeWithoutExpiry(), refresh })
  await engine.setTokens(tokens)
  return engine
}

function snapshot() {
  return {
    refreshGrants: provider.counters.refreshGrants,
    revoked: provider.counters.grantsRevoked,
    errors: Object.values(provider.counters.grantErrors).reduce((a, b) => a + b, 0),
  }
}

function burst(clients: TestClient[], size: number): Promise<number[]> {
  return Promise.all(
    Array.from({ length: size }, (_, i) =>
      (clients[i % clients.length] as TestClient)
        .request(`${api.origin}/orders`)
        .then((r) => r.status),
    ),
  )
}

const cases: Array<{ name: string; adapters: Harness[] }> = [
  ...harnesses.map((harness) => ({ name: harness.name, adapters: [harness] })),
  { name: 'all adapters on one engine', adapters: harnesses },
]

describe.each(cases)('e2e: $name', ({ adapters }) => {
  it.each([
    { mode: 'proactive (expiry known)', reactive: false },
    { mode: 'reactive (401s from the API)', reactive: true },
  ])(
    'bursts across 4 expiries, $mode → one grant per expiry, no grant revoked',
    async ({ reactive }) => {
      vi.useFakeTimers({ toFake: ['Date'] })
      const engine = await session({ reactive })
      const clients = adapters.map((h) => h.create(engine, api.origin))
      const before = snapshot()
      for (let expiry = 0; expiry < 4; expiry++) {
        vi.setSystemTime(Date.now() + (TTL + 1) * 1000)
        const statuses = await burst(clients, 60)
        expect(statuses.filter((s) => s !== 200)).toEqual([])
      }
      const after = snapshot()
      expect(after.refreshGrants - before.refreshGrants).toBe(4)
      expect(engine.stats().grants).toBe(4)
      expect(after.revoked - before.revoked).toBe(0)
      expect(after.errors - before.errors).toBe(0)
    },
  )

  it('the grant revoked at the provider → every waiting request gets SessionExpiredError, once', async () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    const engine = await session()
    const clients = adapters.map((h) => h.create(engine, api.origin))
    let expiredEvents = 0
    engine.on('sessionExpired', () => expiredEvents++)
    const tokens = await engine.getToken()
    await provider.revoke(tokens?.refreshToken as string, 'refresh_token')
    vi.setSystemTime(Date.now() + (TTL + 1) * 1000)
    const outcomes = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        (clients[i % clients.length] as TestClient).request(`${api.origin}/orders`).then(
          () => 'ok',
          (error: unknown) => error,
        ),
      ),
    )
    expect(outcomes.every(isSessionExpiredError)).toBe(true)
    expect(expiredEvents).toBe(1)
    expect(engine.stats().grants).toBe(1)
  })

  it('the provider stopped mid-run → RefreshError, then recovery when it is back', async () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    const engine = await session()
    const clients = adapters.map((h) => h.create(engine, api.origin))
    expect(await burst(clients, 6)).toEqual([200, 200, 200, 200, 200, 200])
    const before = snapshot()
    await provider.stop()
    try {
      vi.setSystemTime(Date.now() + (TTL + 1) * 1000)
      const outcomes = await Promise.all(
        clients.map((c) =>
          c.request(`${api.origin}/orders`).then(
            () => 'ok',
            (e: unknown) => e,
          ),
        ),
      )
      expect(outcomes.every((e) => isRefreshError(e) && e.retryable)).toBe(true)
    } finally {
      await provider.restart()
    }
    expect(await burst(clients, 6)).toEqual([200, 200, 200, 200, 200, 200])
    expect(snapshot().revoked - before.revoked).toBe(0)
    expect(snapshot().refreshGrants - before.refreshGrants).toBe(1)
  })
})
