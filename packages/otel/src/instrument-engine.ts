import {
  type Attributes,
  type BatchObservableResult,
  type Counter,
  type Histogram,
  type Link,
  type MeterProvider,
  metrics,
  type Span,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  type TracerProvider,
  trace,
} from '@opentelemetry/api'
import type {
  Engine,
  EngineEvents,
  EngineStats,
  RefreshError,
  SessionExpiredError,
} from '@reauth/core'

/** Options of {@link instrumentEngine}. */
export interface InstrumentEngineOptions {
  /** Where the metrics go. Default: the global meter provider (`metrics.getMeterProvider()`). */
  meterProvider?: MeterProvider
  /** Where the spans go. Default: the global tracer provider (`trace.getTracerProvider()`). */
  tracerProvider?: TracerProvider
  /**
   * Added to every metric point and span, to tell engines apart, e.g.
   * `{ 'reauth.engine': 'billing-api' }`. Never put a token here.
   */
  attributes?: Attributes
  /** A `reauth.wait` span for each request that waited for a refresh, linked to its grant's span. Default `true`. */
  waitSpans?: boolean
}

/** The instrumentation scope name of the meter and the tracer. */
export const INSTRUMENTATION_SCOPE = '@reauth/otel'

/** RFC 6749 §5.2, RFC 6750 §3.1, RFC 8707, RFC 9449 codes: only these go into `error.type` as they are. */
const OAUTH_ERRORS = new Set([
  'invalid_request',
  'invalid_client',
  'invalid_grant',
  'unauthorized_client',
  'unsupported_grant_type',
  'invalid_scope',
  'invalid_target',
  'invalid_token',
  'insufficient_scope',
  'invalid_dpop_proof',
  'use_dpop_nonce',
  'temporarily_unavailable',
  'server_error',
  'access_denied',
])

/**
 * `error.type` for a failed refresh: the OAuth error code when it is a registered one, else
 * reauth's stable error code. A server-chosen string never goes into an attribute as it is.
 */
function errorType(error: RefreshError | SessionExpiredError): string {
  return error.error !== undefined && OAUTH_ERRORS.has(error.error) ? error.error : error.code
}

const STATS: Array<{ key: keyof EngineStats; name: string; description: string }> = [
  {
    key: 'grants',
    name: 'reauth.grants',
    description: 'Refresh grants started (calls of the refresh function).',
  },
  {
    key: 'joins',
    name: 'reauth.joins',
    description: 'Callers that joined a refresh already in flight.',
  },
  {
    key: 'staleRetries',
    name: 'reauth.stale_retries',
    description:
      'Auth failures of requests sent with an already-replaced token: retried with the current one, no grant.',
  },
  {
    key: 'replays',
    name: 'reauth.replays',
    description: 'Requests replayed after a refresh or a stale retry.',
  },
  {
    key: 'authErrors',
    name: 'reauth.auth_errors',
    description: 'Auth failures (e.g. 401) seen by the adapters.',
  },
  {
    key: 'unreplayable',
    name: 'reauth.unreplayable',
    description:
      'Auth failures answered to the caller because the request body could not be sent again.',
  },
]

/** Seconds, the unit OpenTelemetry's semantic conventions use for durations. */
const seconds = (ms: number) => Math.max(0, ms) / 1000

/**
 * Turn an engine's events into OpenTelemetry metrics and spans, through `@opentelemetry/api`
 * (so it costs nothing until an SDK is registered). Returns the function that stops it.
 *
 * Metrics: `reauth.refreshes` (by `reauth.refresh.reason` and `reauth.refresh.outcome`:
 * `granted`, `adopted`, `failed`, `terminal`), `reauth.refresh.duration` and
 * `reauth.wait.duration` (histograms, seconds), `reauth.sessions.expired`, and the engine's
 * counters `reauth.grants`, `reauth.joins`, `reauth.stale_retries`, `reauth.replays`,
 * `reauth.auth_errors`, `reauth.unreplayable`. Spans: a root `reauth.refresh` span per grant
 * and, for each request that waited, a `reauth.wait` span in the request's trace linked to
 * the grant's span. No attribute carries a token, a key or a server-chosen string.
 *
 * @example
 * import { createEngine } from '@reauth/core'
 * import { instrumentEngine } from '@reauth/otel'
 *
 * const engine = createEngine({ tokens, refresh })
 * const stop = instrumentEngine(engine, { attributes: { 'reauth.engine': 'billing-api' } })
 */
export function instrumentEngine(
  engine: Engine,
  options: InstrumentEngineOptions = {},
): () => void {
  const common = { ...options.attributes }
  const meter = (options.meterProvider ?? metrics.getMeterProvider()).getMeter(
    INSTRUMENTATION_SCOPE,
  )
  const tracer = (options.tracerProvider ?? trace.getTracerProvider()).getTracer(
    INSTRUMENTATION_SCOPE,
  )
  const waitSpans = options.waitSpans ?? true

  const refreshes: Counter = meter.createCounter('reauth.refreshes', {
    description:
      'Refreshes by reason and outcome: granted, adopted (newer tokens found in the store), failed (tokens kept), terminal (session ended).',
  })
  const refreshDuration: Histogram = meter.createHistogram('reauth.refresh.duration', {
    description: 'How long refresh grants took.',
    unit: 's',
  })
  const waitDuration: Histogram = meter.createHistogram('reauth.wait.duration', {
    description:
      'How long requests waited for a refresh before they went on (or failed, or were aborted).',
    unit: 's',
  })
  const sessionsExpired: Counter = meter.createCounter('reauth.sessions.expired', {
    description: 'Sessions ended by a terminal refresh failure; tokens were cleared.',
  })
  const observables = STATS.map((stat) => ({
    ...stat,
    instrument: meter.createObservableCounter(stat.name, { description: stat.description }),
  }))
  const observe = (result: BatchObservableResult) => {
    const stats = engine.stats()
    for (const { key, instrument } of observables) result.observe(instrument, stats[key], common)
  }
  meter.addBatchObservableCallback(
    observe,
    observables.map((o) => o.instrument),
  )

  /** The grant in flight (the engine runs at most one at a time) and the last one that ended. */
  let grant: { span: Span; reason: string; started: number } | undefined
  let last: { context: SpanContext; ended: number } | undefined

  const endGrant = (outcome: string, attributes: Attributes, error?: boolean) => {
    const ended = Date.now()
    if (!grant) return undefined
    const { span, reason, started } = grant
    grant = undefined
    span.setAttributes({ 'reauth.refresh.outcome': outcome, ...attributes })
    if (error)
      span.setStatus({ code: SpanStatusCode.ERROR, message: String(attributes['error.type']) })
    span.end(ended)
    last = { context: span.spanContext(), ended }
    refreshDuration.record(seconds(ended - started), {
      ...common,
      'reauth.refresh.reason': reason,
      'reauth.refresh.outcome': outcome,
    })
    return reason
  }

  const count = (reason: string, outcome: string, attributes: Attributes = {}) => {
    refreshes.add(1, {
      ...common,
      'reauth.refresh.reason': reason,
      'reauth.refresh.outcome': outcome,
      ...attributes,
    })
  }

  const unsubscribe = [
    engine.on('refreshStart', ({ reason }) => {
      // A grant serves every waiter: its own trace, which their wait spans link to.
      const span = tracer.startSpan('reauth.refresh', {
        root: true,
        kind: SpanKind.INTERNAL,
        attributes: { ...common, 'reauth.refresh.reason': reason },
      })
      grant = { span, reason, started: Date.now() }
    }),
    engine.on('refresh', ({ reason, adopted, rotated }) => {
      const outcome = adopted ? 'adopted' : 'granted'
      endGrant(outcome, adopted ? {} : { 'reauth.refresh.rotated': rotated })
      count(reason, outcome)
    }),
    engine.on('refreshError', ({ reason, error }) => {
      const attributes: Attributes = {
        'error.type': errorType(error),
        'reauth.refresh.retryable': error.retryable,
        ...(error.status === undefined ? {} : { 'http.response.status_code': error.status }),
      }
      endGrant('failed', attributes, true)
      count(reason, 'failed', attributes)
    }),
    engine.on('sessionExpired', ({ error }) => {
      const attributes: Attributes = { 'error.type': errorType(error) }
      // Without a grant of ours in flight, the session ended elsewhere (another engine on the
      // same store): a session end, but no refresh outcome of this engine.
      const reason = endGrant('terminal', attributes, true)
      if (reason !== undefined) count(reason, 'terminal', attributes)
      sessionsExpired.add(1, { ...common, ...attributes })
    }),
    engine.on('wait', ({ reason, outcome, durationMs }: EngineEvents['wait']) => {
      const attributes = {
        ...common,
        'reauth.refresh.reason': reason,
        'reauth.wait.outcome': outcome,
      }
      waitDuration.record(seconds(durationMs), attributes)
      if (!waitSpans) return
      const now = Date.now()
      const started = now - durationMs
      // The grant it waited on: the one in flight, or the one that ended while it waited.
      const grantContext =
        grant?.span.spanContext() ?? (last && last.ended >= started ? last.context : undefined)
      const links: Link[] = grantContext ? [{ context: grantContext }] : []
      // Emitted in the waiting request's async context: a child of the request's span, if any.
      const span = tracer.startSpan('reauth.wait', {
        kind: SpanKind.INTERNAL,
        startTime: started,
        attributes,
        links,
      })
      if (outcome === 'failed') span.setStatus({ code: SpanStatusCode.ERROR })
      span.end(now)
    }),
  ]

  return () => {
    for (const off of unsubscribe) off()
    meter.removeBatchObservableCallback(
      observe,
      observables.map((o) => o.instrument),
    )
    grant?.span.end()
    grant = undefined
  }
}
