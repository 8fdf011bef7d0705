import { context, type Span, trace } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import {
  AggregationTemporality,
  type DataPoint,
  type Histogram,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics'
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base'
import {
  createEngine,
  createMemoryStore,
  type Engine,
  OAuthError,
  type TokenSet,
} from '@reauth/core'
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import { steps } from '../../../test/support/steps.js'
import { instrumentEngine } from './instrument-engine.js'

const contextManager = new AsyncLocalStorageContextManager()
beforeAll(() => {
  context.setGlobalContextManager(contextManager.enable())
})
afterAll(() => {
  context.disable()
})

let spans: InMemorySpanExporter
let tracerProvider: BasicTracerProvider
let metricExporter: InMemoryMetricExporter
let reader: PeriodicExportingMetricReader
let meterProvider: MeterProvider

beforeEach(() => {
  spans = new InMemorySpanExporter()
  tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] })
  metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE)
  // Exports only on forceFlush: the test reads the metrics when it wants them.
  reader = new PeriodicExportingMetricReader({
    exporter: metricExporter,
    exportIntervalMillis: 3_600_000,
  })
  meterProvider = new MeterProvider({ readers: [reader] })
})

/** Every data point of every metric, by metric name. */
async function collect(): Promise<Map<string, DataPoint<number | Histogram>[]>> {
  await reader.forceFlush()
  const byName = new Map<string, DataPoint<number | Histogram>[]>()
  const last = metricExporter.getMetrics().at(-1)
  for (const scope of last?.scopeMetrics ?? []) {
    for (const metric of scope.metrics) {
      byName.set(metric.descriptor.name, metric.dataPoints as DataPoint<number | Histogram>[])
    }
  }
  metricExporter.reset()
  return byName
}

function sum(
  points: DataPoint<number | Histogram>[] | undefined,
  match: Record<string, unknown> = {},
) {
  let total = 0
  for (const point of points ?? []) {
    if (Object.entries(match).every(([k, v]) => point.attributes[k] === v)) {
      total += typeof point.value === 'number' ? point.value : point.value.count
    }
  }
  return total
}

/** A token server in miniature: it knows which access token is current. */
function server() {
  let n = 0
  const secrets = new Set<string>()
  const issue = (): TokenSet => {
    n++
    const tokens = {
      accessToken: `at-${n}-${crypto.randomUUID()}`,
      refreshToken: `rt-${n}-${crypto.randomUUID()}`,
      tokenType: 'Bearer',
      expiresAt: Date.now() + 3_600_000,
    }
    secrets.add(tokens.accessToken).add(tokens.refreshToken)
    return tokens
  }
  const first = issue()
  let current = `Bearer ${first.accessToken}`
  return {
    first,
    secrets,
    rotate() {
      const tokens = issue()
      current = `Bearer ${tokens.accessToken}`
      return tokens
    },
    /** A request through the engine's whole path, answered 200 with the current token, else 401. */
    request(engine: Engine, signal?: AbortSignal) {
      return steps(engine).run({
        url: 'https://api.example/me',
        signal,
        send: async (authorization) => ({ status: authorization === current ? 200 : 401 }),
        response: (result) => ({ status: result.status, headers: new Headers() }),
      })
    },
    expire() {
      current = 'expired'
    },
  }
}

function gate() {
  let open!: () => void
  const promise = new Promise<void>((resolve) => {
    open = resolve
  })
  return { promise, open }
}

const span = (name: string) => spans.getFinishedSpans().filter((s) => s.name === name)

describe('instrumentEngine', () => {
  it('a storm of 10 401s: one grant span, ten wait spans in the requests’ traces linked to it, and the counters', async () => {
    const api = server()
    const release = gate()
    const engine = createEngine({
      tokens: api.first,
      origins: ['https://api.example'],
      refresh: async () => {
        await release.promise
        return api.rotate()
      },
    })
    instrumentEngine(engine, {
      meterProvider,
      tracerProvider,
      attributes: { 'reauth.engine': 'test' },
    })
    api.expire()
    const tracer = tracerProvider.getTracer('app')
    const parents: Span[] = []
    const requests = Array.from({ length: 10 }, () =>
      tracer.startActiveSpan('GET /me', async (parent) => {
        parents.push(parent)
        try {
          return await api.request(engine)
        } finally {
          parent.end()
        }
      }),
    )
    await vi.waitFor(() => expect(engine.stats().joins).toBe(9))
    release.open()
    expect((await Promise.all(requests)).map((r) => r.status)).toEqual(Array(10).fill(200))

    const [grant, ...moreGrants] = span('reauth.refresh')
    expect(moreGrants).toEqual([])
    expect(grant?.attributes).toEqual({
      'reauth.engine': 'test',
      'reauth.refresh.reason': 'reactive',
      'reauth.refresh.outcome': 'granted',
      'reauth.refresh.rotated': true,
    })
    expect(grant?.parentSpanContext).toBeUndefined()
    const waits = span('reauth.wait')
    expect(waits).toHaveLength(10)
    const parentIds = new Set(parents.map((p) => p.spanContext().spanId))
    for (const wait of waits) {
      expect(parentIds.has(wait.parentSpanContext?.spanId ?? '')).toBe(true)
      expect(wait.links.map((l) => l.context.spanId)).toEqual([grant?.spanContext().spanId])
      expect(wait.attributes['reauth.wait.outcome']).toBe('refreshed')
    }
    // each request's own span got one wait span
    expect(new Set(waits.map((w) => w.parentSpanContext?.spanId)).size).toBe(10)

    const metrics = await collect()
    const reactive = { 'reauth.refresh.reason': 'reactive', 'reauth.engine': 'test' }
    expect(
      sum(metrics.get('reauth.refreshes'), { ...reactive, 'reauth.refresh.outcome': 'granted' }),
    ).toBe(1)
    expect(sum(metrics.get('reauth.refresh.duration'))).toBe(1)
    expect(
      sum(metrics.get('reauth.wait.duration'), { ...reactive, 'reauth.wait.outcome': 'refreshed' }),
    ).toBe(10)
    expect(sum(metrics.get('reauth.grants'))).toBe(1)
    expect(sum(metrics.get('reauth.joins'))).toBe(9)
    expect(sum(metrics.get('reauth.replays'))).toBe(10)
    expect(sum(metrics.get('reauth.auth_errors'))).toBe(10)
    expect(sum(metrics.get('reauth.stale_retries'))).toBe(0)
  })

  it('a late 401 counts a stale retry, and no wait', async () => {
    const api = server()
    const engine = createEngine({
      tokens: api.first,
      origins: ['https://api.example'],
      refresh: async () => api.rotate(),
    })
    instrumentEngine(engine, { meterProvider, tracerProvider })
    await engine.refresh()
    const old = `Bearer ${api.first.accessToken}`
    expect(await steps(engine).recover(old)).not.toBe(old)
    const metrics = await collect()
    expect(sum(metrics.get('reauth.stale_retries'))).toBe(1)
    expect(
      sum(metrics.get('reauth.refreshes'), {
        'reauth.refresh.reason': 'manual',
        'reauth.refresh.outcome': 'granted',
      }),
    ).toBe(1)
    expect(sum(metrics.get('reauth.wait.duration'))).toBe(0)
    expect(span('reauth.wait')).toEqual([])
  })

  it('a transient failure, then a terminal one: outcomes, error.type, status, session end', async () => {
    const api = server()
    const failures = [
      Object.assign(new Error('HTTP 503'), { response: new Response(null, { status: 503 }) }),
      new OAuthError({ error: 'invalid_grant', status: 400 }),
    ]
    const engine = createEngine({
      tokens: api.first,
      origins: ['https://api.example'],
      refresh: async () => {
        throw failures.shift()
      },
    })
    instrumentEngine(engine, { meterProvider, tracerProvider })
    api.expire()
    await expect(api.request(engine)).rejects.toMatchObject({ name: 'RefreshError' })
    await expect(api.request(engine)).rejects.toMatchObject({ name: 'SessionExpiredError' })

    const [transient, terminal] = span('reauth.refresh')
    expect(transient?.attributes).toMatchObject({
      'reauth.refresh.outcome': 'failed',
      'reauth.refresh.retryable': true,
      'http.response.status_code': 503,
      'error.type': 'REFRESH_FAILED',
    })
    expect(transient?.status.code).toBe(2) // ERROR
    expect(terminal?.attributes).toMatchObject({
      'reauth.refresh.outcome': 'terminal',
      'error.type': 'invalid_grant',
    })
    const metrics = await collect()
    expect(sum(metrics.get('reauth.refreshes'), { 'reauth.refresh.outcome': 'failed' })).toBe(1)
    expect(
      sum(metrics.get('reauth.refreshes'), {
        'reauth.refresh.outcome': 'terminal',
        'reauth.refresh.reason': 'reactive',
      }),
    ).toBe(1)
    expect(sum(metrics.get('reauth.sessions.expired'), { 'error.type': 'invalid_grant' })).toBe(1)
    expect(sum(metrics.get('reauth.wait.duration'), { 'reauth.wait.outcome': 'failed' })).toBe(2)
    expect(span('reauth.wait').every((w) => w.status.code === 2)).toBe(true)
  })

  it('an aborted wait is a wait with outcome aborted', async () => {
    const api = server()
    const release = gate()
    const engine = createEngine({
      tokens: api.first,
      origins: ['https://api.example'],
      refresh: async () => {
        await release.promise
        return api.rotate()
      },
    })
    instrumentEngine(engine, { meterProvider, tracerProvider })
    api.expire()
    const controller = new AbortController()
    const aborted = api.request(engine, controller.signal).catch((e: unknown) => e)
    await vi.waitFor(() => expect(engine.stats().grants).toBe(1))
    controller.abort()
    expect(await aborted).toBe(controller.signal.reason)
    release.open()
    const metrics = await collect()
    expect(sum(metrics.get('reauth.wait.duration'), { 'reauth.wait.outcome': 'aborted' })).toBe(1)
  })

  it('no token, and no server-chosen error string, in any span, link, status or metric attribute', async () => {
    const api = server()
    let calls = 0
    const engine = createEngine({
      tokens: api.first,
      origins: ['https://api.example'],
      refresh: async ({ tokens }) => {
        calls++
        if (calls === 2) {
          // a hostile or broken server echoing the refresh token as its error code
          throw new OAuthError({ error: tokens.refreshToken ?? 'x', status: 400 })
        }
        if (calls === 3)
          throw new OAuthError({
            error: 'invalid_grant',
            errorDescription: tokens.refreshToken ?? 'x',
            status: 400,
          })
        return api.rotate()
      },
    })
    instrumentEngine(engine, { meterProvider, tracerProvider })
    for (let i = 0; i < 3; i++) {
      api.expire()
      await api.request(engine).catch(() => undefined)
    }
    expect(calls).toBe(3)
    const texts: string[] = []
    for (const s of spans.getFinishedSpans() as ReadableSpan[]) {
      texts.push(
        s.name,
        JSON.stringify(s.attributes),
        JSON.stringify(s.status),
        JSON.stringify(s.events),
      )
      for (const link of s.links) texts.push(JSON.stringify(link.attributes ?? {}))
    }
    for (const [name, points] of await collect()) {
      texts.push(name, ...points.map((p) => JSON.stringify(p.attributes)))
    }
    expect(texts.length).toBeGreaterThan(20)
    expect(api.secrets.size).toBeGreaterThanOrEqual(4)
    const leaked = [...api.secrets].filter((secret) => texts.some((text) => text.includes(secret)))
    expect(leaked).toEqual([])
    expect(span('reauth.refresh').map((s) => s.attributes['error.type'])).toEqual([
      undefined,
      'REFRESH_FAILED',
      'invalid_grant',
    ])
  })

  it('a session ended by another engine on the same store is a session end, not a refresh of this one', async () => {
    const api = server()
    const store = createMemoryStore(api.first)
    const refresh = async () => {
      throw new OAuthError({ error: 'invalid_grant', status: 400 })
    }
    const other = createEngine({ store, origins: ['https://api.example'], refresh })
    const engine = createEngine({ store, origins: ['https://api.example'], refresh })
    instrumentEngine(engine, { meterProvider, tracerProvider })
    api.expire()
    await expect(api.request(other)).rejects.toMatchObject({ name: 'SessionExpiredError' })
    await expect(engine.getToken()).rejects.toMatchObject({ name: 'SessionExpiredError' })
    const metrics = await collect()
    expect(sum(metrics.get('reauth.sessions.expired'), { 'error.type': 'invalid_grant' })).toBe(1)
    expect(sum(metrics.get('reauth.refreshes'))).toBe(0)
    expect(sum(metrics.get('reauth.grants'))).toBe(0)
    expect(span('reauth.refresh')).toEqual([])
  })

  it('the returned function stops it: no more spans or counts', async () => {
    const api = server()
    const engine = createEngine({
      tokens: api.first,
      origins: ['https://api.example'],
      refresh: async () => api.rotate(),
    })
    const stop = instrumentEngine(engine, { meterProvider, tracerProvider })
    await engine.refresh()
    stop()
    await engine.refresh()
    expect(span('reauth.refresh')).toHaveLength(1)
    const metrics = await collect()
    expect(sum(metrics.get('reauth.refreshes'))).toBe(1)
    expect(metrics.get('reauth.grants') ?? []).toEqual([])
  })

  it('uses the global providers by default', async () => {
    trace.setGlobalTracerProvider(tracerProvider)
    try {
      const api = server()
      const engine = createEngine({ tokens: api.first, refresh: async () => api.rotate() })
      const stop = instrumentEngine(engine)
      await engine.refresh()
      stop()
      expect(span('reauth.refresh')).toHaveLength(1)
    } finally {
      trace.disable()
    }
  })
})
