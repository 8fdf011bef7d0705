/**
 * @reauth/redis across processes: 4 worker processes, each its own engine with @reauth/fetch
 * over one Redis store and lock, against a loopback token endpoint that rotates refresh
 * tokens and revokes the family on reuse. Ordering comes from worker messages (IPC) and
 * bounded polling, never sleeps; every wait is bounded.
 */
import { createRedisStore } from '@reauth/redis'
import { createClient } from 'redis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Outcome, WorkerSetup } from './support/protocol.js'
import { type RunningRedis, startRedis } from './support/redis-server.js'
import { startTokenServer, type TokenServer } from './support/token-server.js'
import { startWorkers, type Worker } from './support/workers.js'

const TTL = 60
let redis: RunningRedis
let server: TokenServer
let workers: Worker[]
let client: ReturnType<typeof createClient>
let scenario = 0

beforeAll(async () => {
  ;[redis, server, workers] = await Promise.all([
    startRedis(),
    startTokenServer({ ttl: TTL }),
    startWorkers(4),
  ])
  client = createClient({ url: redis.url, socket: { reconnectStrategy: () => 100 } })
  client.on('error', () => {})
  await client.connect()
}, 60_000)

afterAll(async () => {
  await Promise.all((workers ?? []).map((w) => w.stop()))
  client?.destroy()
  await server?.stop()
  await redis?.stop()
})

/** A fresh shared session: a new Redis key signed in, every worker set up on it. */
async function session(overrides: Partial<WorkerSetup> = {}) {
  const key = `mp:${++scenario}`
  const setup: WorkerSetup = {
    redisUrl: redis.url,
    key,
    api: server.origin,
    grant: { kind: 'plain', tokenEndpoint: server.tokenEndpoint },
    refreshTimeout: 2_000,
    lease: 3_000,
    waitTimeout: 8_000,
    retryInterval: 1_000,
    commandTimeout: 500,
    ...overrides,
  }
  server.setGrace(0)
  await createRedisStore(client, { key }).set(server.signIn())
  await Promise.all(workers.map((w) => w.setup(setup)))
  return key
}

/** Expire every token: move the server's and every worker's clock past the lifetime. */
async function nextLifetime() {
  server.advance((TTL + 1) * 1000)
  await Promise.all(workers.map((w) => w.call({ type: 'clock', offset: server.offset })))
}

const statuses = (outcomes: Outcome[]) =>
  outcomes.map((o) => ('status' in o ? o.status : `${o.error}:${o.message}`))

async function assertNoLeaks() {
  const texts = (await Promise.all(workers.map((w) => w.report()))).flatMap((r) => r.texts)
  const leaked = [...server.issued].filter((token) => texts.some((t) => t.includes(token)))
  expect(leaked).toEqual([])
}

/** Poll (bounded) until `condition` holds. */
async function until(condition: () => Promise<boolean>, ms: number, what: string) {
  const deadline = Date.now() + ms
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`)
    await new Promise((resolve) => setImmediate(resolve))
  }
}

/** Subscribers of a channel (worker processes waiting on the lock's release message). */
async function subscribers(channel: string): Promise<number> {
  const reply = (await client.sendCommand(['PUBSUB', 'NUMSUB', channel])) as [string, number]
  return Number(reply[1])
}

describe('@reauth/redis, 4 processes', () => {
  it('bursts across 5 token lifetimes (4 proactive, 1 reactive) → one grant per expiry, zero reuse, zero failures', async () => {
    await session()
    const before = { ...server.counters }
    await Promise.all(workers.map((w) => w.report())) // reset texts and read stats
    for (let lifetime = 0; lifetime < 5; lifetime++) {
      const grants = server.counters.grants
      if (lifetime === 2)
        server.expireAll() // server-side expiry: 401s, reactive refresh
      else await nextLifetime()
      const outcomes = (await Promise.all(workers.map((w) => w.burst(25)))).flat()
      expect(statuses(outcomes).filter((s) => s !== 200)).toEqual([])
      expect(outcomes).toHaveLength(100)
      expect(server.counters.grants - grants).toBe(1)
    }
    expect(server.counters.grants - before.grants).toBe(5)
    expect(server.counters.reuses - before.reuses).toBe(0)
    expect(server.counters.rejected - before.rejected).toBe(0)
    const stats = (await Promise.all(workers.map((w) => w.report()))).map((r) => r.stats)
    expect(stats.reduce((sum, s) => sum + (s?.grants ?? 0), 0)).toBe(5)
    // the other processes adopted the new set instead of granting
    expect(stats.reduce((sum, s) => sum + (s?.adopted ?? 0), 0)).toBeGreaterThan(0)
    await assertNoLeaks()
  }, 60_000)

  it('a process killed (SIGKILL) holding the lock, before its grant → the lease runs out, one other process refreshes, no request lost', async () => {
    const key = await session({ refreshTimeout: 1_000, lease: 1_500 })
    const [victim, ...others] = workers as [Worker, ...Worker[]]
    const grants = server.counters.grants
    await victim.call({ type: 'arm', mode: 'hold-lock' })
    await nextLifetime()
    void victim.burst(5).catch(() => {})
    await victim.next('holding')
    const bursts = Promise.all(others.map((w) => w.burst(20)))
    // the three others are waiting on the lock (subscribed to its release channel)
    await until(
      async () => (await subscribers(`reauth:lock:${key}:released`)) >= others.length,
      10_000,
      'the others wait on the lock',
    )
    await victim.kill()
    const outcomes = (await bursts).flat()
    expect(statuses(outcomes).filter((s) => s !== 200)).toEqual([])
    expect(outcomes).toHaveLength(60)
    expect(server.counters.grants - grants).toBe(1)
    expect(server.counters.rejected).toBe(0)
    workers[0] = (await startWorkers(1))[0]!
  }, 60_000)

  it('a process killed after its grant, before storing it, and no grace period → the rotating server ends the session; every request fails typed', async () => {
    await session({ refreshTimeout: 1_000, lease: 1_500 })
    const [victim, ...others] = workers as [Worker, ...Worker[]]
    const before = { ...server.counters }
    await victim.call({ type: 'arm', mode: 'hold-store' })
    await nextLifetime()
    void victim.burst(5).catch(() => {})
    await victim.next('granted')
    await victim.kill()
    const outcomes = (await Promise.all(others.map((w) => w.burst(10)))).flat()
    expect(outcomes).toHaveLength(30)
    expect(outcomes.every((o) => 'error' in o && o.error === 'SessionExpiredError')).toBe(true)
    // the dead process's grant, then the next holder presented the rotated refresh token again
    expect(server.counters.grants - before.grants).toBe(1)
    expect(server.counters.reuses - before.reuses).toBe(1)
    workers[0] = (await startWorkers(1))[0]!
    await assertNoLeaks()
  }, 60_000)

  it('a process killed after its grant, before storing it, with a grace period → the next holder recovers; no request fails', async () => {
    await session({ refreshTimeout: 1_000, lease: 1_500 })
    server.setGrace(30_000)
    const [victim, ...others] = workers as [Worker, ...Worker[]]
    const before = { ...server.counters }
    await victim.call({ type: 'arm', mode: 'hold-store' })
    await nextLifetime()
    void victim.burst(5).catch(() => {})
    await victim.next('granted')
    await victim.kill()
    const outcomes = (await Promise.all(others.map((w) => w.burst(10)))).flat()
    expect(statuses(outcomes).filter((s) => s !== 200)).toEqual([])
    expect(server.counters.grants - before.grants).toBe(2)
    expect(server.counters.graceReuses - before.graceReuses).toBe(1)
    expect(server.counters.reuses - before.reuses).toBe(0)
    workers[0] = (await startWorkers(1))[0]!
  }, 60_000)

  it('Redis restarted mid-run → typed retryable errors while it is down, no hang, recovery with one grant when it is back', async () => {
    await session()
    expect(statuses((await Promise.all(workers.map((w) => w.burst(5)))).flat())).toEqual(
      Array(20).fill(200),
    )
    const grants = server.counters.grants
    const reuses = server.counters.reuses
    await redis.stop({ keepData: true })
    try {
      await nextLifetime()
      const started = Date.now()
      const down = (await Promise.all(workers.map((w) => w.burst(5)))).flat()
      expect(Date.now() - started).toBeLessThan(10_000)
      expect(down).toHaveLength(20)
      for (const outcome of down) {
        expect(outcome).toMatchObject({ error: 'RefreshError', retryable: true })
      }
    } finally {
      await redis.start()
    }
    let outcomes: Outcome[] = []
    await until(
      async () => {
        outcomes = (await Promise.all(workers.map((w) => w.burst(5)))).flat()
        return outcomes.every((o) => 'status' in o && o.status === 200)
      },
      15_000,
      'recovery after the restart',
    )
    expect(server.counters.grants - grants).toBe(1)
    expect(server.counters.reuses - reuses).toBe(0)
    await assertNoLeaks()
  }, 60_000)
})
