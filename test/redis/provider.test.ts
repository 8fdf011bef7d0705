/**
 * @reauth/redis across processes against the real OpenID Provider (oidc-provider, in this
 * process on 127.0.0.1) and its introspecting API: a rotated refresh token presented twice
 * revokes the grant, so a duplicate refresh anywhere shows up as a revoked grant.
 *
 * Time: only `Date` is faked here (the provider's clock); each worker moves its `Date.now`
 * by the same offset over IPC. Nothing waits for real time.
 */
import { createRedisStore } from '@reauth/redis'
import {
  clientOptions,
  type RunningApi,
  type RunningProvider,
  signInOverHttp,
  startApi,
  startProvider,
} from '@reauth/testbed'
import { createClient } from 'redis'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import type { Outcome } from './support/protocol.js'
import { type RunningRedis, startRedis } from './support/redis-server.js'
import { startWorkers, type Worker } from './support/workers.js'

const TTL = 30
let redis: RunningRedis
let provider: RunningProvider
let api: RunningApi
let workers: Worker[]

beforeAll(async () => {
  ;[redis, provider, workers] = await Promise.all([
    startRedis(),
    startProvider({ accessTokenTtl: TTL }),
    startWorkers(4),
  ])
  api = await startApi({ issuer: provider.issuer })
}, 60_000)

afterAll(async () => {
  vi.useRealTimers()
  await Promise.all((workers ?? []).map((w) => w.stop()))
  await api?.stop()
  await provider?.stop()
  await redis?.stop()
})

describe('@reauth/redis, 4 processes, real oidc-provider', () => {
  it('bursts across 3 token lifetimes → one grant per expiry, no grant revoked, no failed request', async () => {
    const tokens = await signInOverHttp(provider.issuer)
    const client = createClient({ url: redis.url })
    client.on('error', () => {})
    await client.connect()
    try {
      await createRedisStore(client, { key: 'oidc' }).set(tokens)
    } finally {
      client.destroy()
    }
    const { issuer, clientId, redirectUri, scope } = clientOptions(provider.issuer)
    await Promise.all(
      workers.map((w) =>
        w.setup({
          redisUrl: redis.url,
          key: 'oidc',
          api: api.origin,
          grant: {
            kind: 'oauth',
            options: {
              issuer: String(issuer),
              clientId,
              redirectUri,
              scope: scope ?? 'openid',
              allowInsecureRequests: true,
            },
          },
          refreshTimeout: 5_000,
          lease: 8_000,
          waitTimeout: 15_000,
          retryInterval: 1_000,
          commandTimeout: 1_000,
        }),
      ),
    )
    vi.useFakeTimers({ toFake: ['Date'] })
    const start = Date.now()
    const before = { ...provider.counters }
    const errorsBefore = Object.values(before.grantErrors).reduce((a, b) => a + b, 0)
    for (let lifetime = 1; lifetime <= 3; lifetime++) {
      const offset = lifetime * (TTL + 1) * 1000
      vi.setSystemTime(start + offset)
      await Promise.all(workers.map((w) => w.call({ type: 'clock', offset })))
      const grants = provider.counters.refreshGrants
      const outcomes: Outcome[] = (await Promise.all(workers.map((w) => w.burst(15)))).flat()
      expect(outcomes.filter((o) => !('status' in o) || o.status !== 200)).toEqual([])
      expect(outcomes).toHaveLength(60)
      expect(provider.counters.refreshGrants - grants).toBe(1)
    }
    expect(provider.counters.refreshGrants - before.refreshGrants).toBe(3)
    expect(provider.counters.grantsRevoked - before.grantsRevoked).toBe(0)
    const errors = Object.values(provider.counters.grantErrors).reduce((a, b) => a + b, 0)
    expect(errors - errorsBefore).toBe(0)
    const reports = await Promise.all(workers.map((w) => w.report()))
    expect(reports.reduce((sum, r) => sum + (r.stats?.grants ?? 0), 0)).toBe(3)
    const texts = reports.flatMap((r) => r.texts)
    for (const value of [tokens.accessToken, tokens.refreshToken ?? '']) {
      expect(texts.some((t) => t.includes(value))).toBe(false)
    }
  }, 60_000)
})
