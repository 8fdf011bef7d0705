import { type Client, settle, type Variant } from './clients.js'
import type { Server } from './control.js'
import type { ServerConfig, TraceEvent } from './server.js'
import { collect, median, percentile, pool, sleep } from './stats.js'

/** Time the token endpoint takes for a grant in every scenario: one "token round trip". */
export const TOKEN_DELAY_MS = 50

async function setUp(
  server: Server,
  variant: Variant,
  config: ServerConfig,
  engine: Parameters<Variant['make']>[0]['engine'] = {},
): Promise<Client> {
  const sentAt = Date.now()
  const tokens = await server.reset(config)
  return variant.make({ server, tokens, sentAt, engine })
}

async function timed(client: Client): Promise<{ ok: boolean; ms: number }> {
  const start = performance.now()
  const ok = await client.get()
  return { ok, ms: performance.now() - start }
}

// ---------------------------------------------------------------- 1. overhead

export interface OverheadRun {
  variant: string
  mode: 'sequential' | 'concurrent'
  ms: number
  /** CPU time (user + system) of the client process during the run, µs: robust to other load. */
  cpuMicros?: number
  failures: number
  /** Which repeat (1-based) this run belongs to. */
  repeat?: number
}

/** `count` requests with a valid token, sequentially or `concurrency` at a time. */
export async function overheadRun(
  server: Server,
  variant: Variant,
  mode: OverheadRun['mode'],
  count: number,
  concurrency: number,
): Promise<OverheadRun> {
  const client = await setUp(server, variant, {})
  const width = mode === 'sequential' ? 1 : concurrency
  // Warm-up: JIT, and a full connection pool. At least one request per worker, so each worker's
  // keep-alive socket is open before the clock starts: the pools close sockets idle for 4-5 s
  // (Node's global agent, undici), which happens while the other cells run their slices, and
  // reopening them inside the measured window fell on whichever cell of a client ran first.
  await pool(Math.max(width, Math.min(1_000, Math.ceil(count / 10))), width, () => client.get())
  collect()
  const cpu = process.cpuUsage()
  const start = performance.now()
  const results = await pool(count, width, () => client.get())
  const ms = performance.now() - start
  const used = process.cpuUsage(cpu)
  const stats = await server.stats()
  if (stats.api401 > 0) throw new Error(`${variant.name}: 401s in the overhead run`)
  return {
    variant: variant.name,
    mode,
    ms,
    cpuMicros: used.user + used.system,
    failures: results.filter((ok) => !ok).length,
  }
}

// ---------------------------------------------------------------- 2. storm

export interface StormRun {
  variant: string
  grants: number
  successes: number
  reuse: number
  /** Latency of the same burst with a valid token. */
  validP50: number
  validP99: number
  stormP50: number
  stormP99: number
}

export async function stormRun(server: Server, variant: Variant, size: number): Promise<StormRun> {
  const client = await setUp(server, variant, { tokenDelayMs: TOKEN_DELAY_MS })
  await pool(size, size, () => client.get()) // warm-up: opens the sockets
  const valid = await Promise.all(Array.from({ length: size }, () => timed(client)))
  await server.invalidate()
  const before = await server.stats()
  const storm = await Promise.all(Array.from({ length: size }, () => timed(client)))
  const after = await server.stats()
  const validMs = valid.map((r) => r.ms)
  const stormMs = storm.map((r) => r.ms)
  return {
    variant: variant.name,
    grants: after.grants - before.grants,
    successes: storm.filter((r) => r.ok).length,
    reuse: after.reuse - before.reuse,
    validP50: percentile(validMs, 50),
    validP99: percentile(validMs, 99),
    stormP50: percentile(stormMs, 50),
    stormP99: percentile(stormMs, 99),
  }
}

/** One storm, recorded for the timeline chart: every request as the client saw it, every server event. */
export interface TimelineRun {
  variant: string
  /** ms since the server started tracing, on the client's clock aligned at the storm's start. */
  requests: Array<{ start: number; end: number; ok: boolean }>
  events: TraceEvent[]
}

export async function timelineRun(
  server: Server,
  variant: Variant,
  size: number,
): Promise<TimelineRun> {
  const client = await setUp(server, variant, { tokenDelayMs: TOKEN_DELAY_MS })
  await pool(size, size, () => client.get()) // warm-up: opens the sockets
  await server.invalidate()
  await server.trace(true)
  // The trace's zero is when the server got the control call; the client's zero is taken right
  // after its answer: the offset (half a loopback round trip, well under 1 ms) is left as is.
  const t0 = performance.now()
  const requests = await Promise.all(
    Array.from({ length: size }, async () => {
      const start = performance.now() - t0
      const ok = await client.get()
      return { start, end: performance.now() - t0, ok }
    }),
  )
  const { events } = await server.trace(false)
  return { variant: variant.name, requests, events }
}

/** One token round trip as a client sees it: the median of direct grants over fetch. */
export async function tokenRoundTrip(server: Server, count: number): Promise<number> {
  const times: number[] = []
  let { refresh_token: refresh } = await server.reset({ tokenDelayMs: TOKEN_DELAY_MS })
  for (let i = 0; i < count; i++) {
    const start = performance.now()
    const response = await fetch(server.tokenUrl, {
      method: 'POST',
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refresh }),
    })
    refresh = ((await response.json()) as { refresh_token: string }).refresh_token
    times.push(performance.now() - start)
  }
  return median(times)
}

// ---------------------------------------------------------------- 3. late 401s

export interface LateRun {
  variant: string
  grants: number
  successes: number
  reuse: number
}

/**
 * `size` requests go with a token the server no longer accepts; it answers the first 401 at
 * once and holds the others until a grant completed (+20 ms): they arrive after the refresh.
 */
export async function lateRun(server: Server, variant: Variant, size: number): Promise<LateRun> {
  const client = await setUp(server, variant, { tokenDelayMs: TOKEN_DELAY_MS })
  await pool(size, size, () => client.get())
  await server.invalidate()
  await server.late({ immediate: 1, afterGrantMs: 20 })
  const before = await server.stats()
  const results = await Promise.all(Array.from({ length: size }, () => client.get()))
  await sleep(100) // any refresh a late 401 started
  const after = await server.stats()
  return {
    variant: variant.name,
    grants: after.grants - before.grants,
    successes: results.filter(Boolean).length,
    reuse: after.reuse - before.reuse,
  }
}

// ---------------------------------------------------------------- 4. proactive

export interface ProactiveRun {
  variant: string
  requests: number
  successes: number
  seen401: number
  grants: number
  reuse: number
  lifetimes: number
}

/** Requests flow from `workers` loops across `lifetimes` token lifetimes of `ttlMs`. */
export async function proactiveRun(
  server: Server,
  variant: Variant,
  ttlMs: number,
  lifetimes: number,
  workers: number,
): Promise<ProactiveRun> {
  const client = await setUp(server, variant, { ttlMs, tokenDelayMs: TOKEN_DELAY_MS })
  const end = performance.now() + ttlMs * lifetimes
  let requests = 0
  let successes = 0
  await Promise.all(
    Array.from({ length: workers }, async () => {
      // Bounded by time, and by count as a guard.
      while (performance.now() < end && requests < 1_000_000) {
        requests++
        if (await client.get()) successes++
      }
    }),
  )
  const stats = await server.stats()
  return {
    variant: variant.name,
    requests,
    successes,
    seen401: stats.api401,
    grants: stats.grants,
    reuse: stats.reuse,
    lifetimes,
  }
}

// ---------------------------------------------------------------- 5. memory

/**
 * Where a pending request is held while it is measured:
 * - `before send`: waiting on a refresh before it was sent (reauth: the token is known to be
 *   expired; peers: parked in their queue after another request's 401 started the refresh);
 * - `after 401`: sent with a token the server stopped accepting, answered 401, and now waiting
 *   on the one refresh (reauth only);
 * - `in flight`: sent with a valid token, the server holds its answer (the plain client's
 *   pending request, the baseline the two others are held to).
 */
export type MemoryStage = 'before send' | 'after 401' | 'in flight'

export interface MemoryRun {
  variant: string
  stage: MemoryStage
  waiting: number
  bytesPerRequest: number
  successes: number
}

async function until(check: () => boolean | Promise<boolean>, limitMs: number): Promise<boolean> {
  const end = performance.now() + limitMs
  while (performance.now() < end) {
    if (await check()) return true
    await sleep(20)
  }
  return false
}

/**
 * `size` pending requests at once, held at `stage` (see {@link MemoryStage}); the heap is
 * measured after full collections with all of them pending, and compared with the heap before
 * they were made. The stages that send first open as many keep-alive connections as the run
 * will use (a burst as wide as the run), so pooled sockets are in the heap before and after
 * alike and the figure is the per-request state only.
 */
export async function memoryRun(
  server: Server,
  variant: Variant,
  stage: MemoryStage,
  size: number,
): Promise<MemoryRun> {
  const reauth = variant.kind === 'reauth'
  if (stage === 'after 401' && !reauth) throw new Error('after 401: reauth rows only')
  const client = await setUp(server, variant, { tokenDelayMs: TOKEN_DELAY_MS })
  const engine = client.engine
  await pool(stage === 'before send' ? 50 : size, size, () => client.get())
  let trigger: Promise<boolean> | undefined
  if (stage === 'in flight') {
    await server.holdApi(true)
  } else {
    await server.hold(true)
    if (stage === 'after 401') {
      await server.invalidate()
    } else if (engine) {
      const current = await engine.getToken()
      if (!current) throw new Error('no tokens')
      await engine.setTokens({ ...current, expiresAt: Date.now() - 1 })
    } else {
      await server.invalidate()
      trigger = client.get()
      if (!(await until(async () => (await server.stats()).heldTokenRequests === 1, 5_000))) {
        throw new Error(`${variant.name}: the trigger request did not start a refresh`)
      }
    }
  }
  const promises = new Array<Promise<boolean>>(size)
  const joinsBefore = engine?.stats().joins ?? 0
  collect()
  const before = process.memoryUsage().heapUsed
  const apiBefore = (await server.stats()).apiRequests
  for (let i = 0; i < size; i++) promises[i] = client.get()
  const settled = await until(async () => {
    if (stage === 'in flight') return (await server.stats()).heldApi === size
    // Every request but the first joined the one refresh.
    if (engine) return engine.stats().joins - joinsBefore >= size - 1
    // Nothing reaches the server while the peer's queue holds the requests.
    await sleep(300)
    return (await server.stats()).apiRequests === apiBefore
  }, 20_000)
  if (!settled) {
    const seen = await server.stats()
    throw new Error(
      `${variant.name} (${stage}): requests did not settle into waiting (server: ${seen.apiRequests - apiBefore} requests, ${seen.api401} 401s, ${seen.heldApi} held; engine: ${JSON.stringify(engine?.stats())})`,
    )
  }
  collect()
  const after = process.memoryUsage().heapUsed
  if (stage === 'in flight') await server.holdApi(false)
  else await server.hold(false)
  const results = await Promise.all(promises)
  await trigger
  return {
    variant: variant.name,
    stage,
    waiting: size,
    bytesPerRequest: (after - before) / size,
    successes: results.filter(Boolean).length,
  }
}

/**
 * The harness's own share of a memory figure, in bytes per request: `size` calls pending the
 * way every client's `get()` is — `settle(async () => (await …).status)`, two async frames —
 * with nothing under them but one held promise. The same for every row of the memory table.
 */
export async function harnessRun(size: number): Promise<number> {
  let release: (status: number) => void = () => {}
  const held = new Promise<number>((resolve) => {
    release = resolve
  })
  const promises = new Array<Promise<boolean>>(size)
  collect()
  const before = process.memoryUsage().heapUsed
  for (let i = 0; i < size; i++) promises[i] = settle(async () => await held)
  collect()
  const after = process.memoryUsage().heapUsed
  release(200)
  await Promise.all(promises)
  return (after - before) / size
}
