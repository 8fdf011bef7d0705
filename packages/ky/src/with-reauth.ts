import { type Engine, ReauthOptionsError } from '@reauth/core'
import {
  assertEngine,
  type Connection,
  connect,
  createParkingLot,
  type ParkingLot,
  type Pass,
} from '@reauth/core/adapter'
import { CALLER, type CallerOptions, isObject } from './ky-majors.js'
import { KyParkedCall, Parked, type ResponsePromise } from './park.js'
import { type PrefixOptions, prefixOrigin } from './prefix-origin.js'
import {
  createFetchLevel,
  type Fetch,
  type FetchLevelHooks,
  type KyFunction,
  type KyLike,
  type ReauthAfterResponseHook,
  type ReauthKyOptions,
  timeoutError,
  validateKy,
} from './reauth-hooks.js'

const METHODS = new Set(['get', 'post', 'put', 'patch', 'head', 'delete'])

/** ky 2's `replaceOption(value)`: a marker object (its symbol is not exported). */
function replaced(value: unknown): value is { value: unknown } {
  return (
    isObject(value) &&
    Object.getOwnPropertySymbols(value).some((symbol) => symbol.description === 'replaceOption')
  )
}

/**
 * A `fetch` option given to a call or to `extend`, wrapped so that reauth sees the responses:
 * a function, `undefined` (ky then uses the global `fetch`) or ky 2's `replaceOption(fetch)`.
 */
function wrapFetchOption(parking: Parking, fetch: unknown): unknown {
  if (replaced(fetch)) return { ...fetch, value: wrapFetchOption(parking, fetch.value) }
  return typeof fetch === 'function' || fetch === undefined ? parking.wrap(fetch) : fetch
}

/**
 * Options whose requests reauth's `fetch` may not know: hooks that run after reauth's and may
 * send a `Request` of their own (`beforeRequest`, ky 2's `beforeRetry`), ky 2's
 * `onUploadProgress` (ky wraps the request) and `retryOnTimeout` (ky 2 rebuilds it).
 */
function unseen(options: unknown, ownHooksFirst: boolean): boolean {
  if (!isObject(options)) return false
  const { hooks, retry } = options as { hooks?: unknown; retry?: unknown }
  if (typeof options.onUploadProgress === 'function') return true
  if (isObject(retry) && retry.retryOnTimeout === true) return true
  if (!isObject(hooks)) return false
  const some = (list: unknown) => Array.isArray(list) && list.length > 0
  return some(hooks.beforeRetry) || (!ownHooksFirst && some(hooks.beforeRequest))
}

/**
 * A call's options as reauth hands them to ky:
 * - its own `fetch` (which replaces the instance's) wrapped;
 * - reauth's `afterResponse` added when its requests may not be known to the `fetch`;
 * - the caller's own `signal` kept in `context` (ky 1 hands hooks only the one it derives
 *   from it), and for a call that was parked, its deadline and pass.
 */
function withCaller(parking: Parking, options: unknown, deadline?: number, pass?: Pass): unknown {
  const parked = deadline !== undefined || pass !== undefined
  if (!parked && !parking.unseen && (typeof options !== 'object' || options === null)) {
    return options
  }
  let out = (options ?? {}) as Record<string, unknown>
  if (Object.hasOwn(out, 'fetch')) {
    const fetch = wrapFetchOption(parking, out.fetch)
    if (fetch !== out.fetch) out = { ...out, fetch }
  }
  if (parking.unseen || unseen(out, false)) {
    const hooks = isObject(out.hooks) ? out.hooks : {}
    const after = Array.isArray(hooks.afterResponse) ? hooks.afterResponse : []
    out = { ...out, hooks: { ...hooks, afterResponse: [...after, parking.afterResponse] } }
  }
  const { signal, context } = out as { signal?: unknown; context?: unknown }
  if (!(signal instanceof AbortSignal) && !parked) return out === options ? options : out
  const caller: CallerOptions = {}
  if (signal instanceof AbortSignal) caller.signal = signal
  if (deadline !== undefined) caller.deadline = deadline
  if (pass !== undefined) caller.pass = pass
  return {
    ...out,
    context: {
      ...(typeof context === 'object' && context !== null ? context : {}),
      [CALLER]: caller,
    },
  }
}

/** ky's timeout when neither the call nor the instance sets one (ky 1 and ky 2). */
const KY_TIMEOUT = 10_000

/** An absolute http(s) URL. */
const ABSOLUTE = /^https?:\/\//i

/** The options of a call or an instance that parking reads. */
interface CallOptions extends PrefixOptions {
  headers?: unknown
  signal?: AbortSignal | null
  timeout?: number | false
  context?: { reauth?: unknown }
  method?: unknown
  hooks?: { beforeRequest?: unknown[] }
}

/** The call names its own `Authorization` or DPoP proof (reauth then leaves it alone). */
function ownsAuthorization(headers: unknown): boolean {
  if (!isObject(headers)) return false
  if (headers instanceof Headers) return headers.has('authorization') || headers.has('dpop')
  const names = Array.isArray(headers)
    ? headers.map((pair) => (Array.isArray(pair) ? String(pair[0]) : ''))
    : Object.keys(headers).filter((name) => headers[name] !== undefined)
  return names.some((name) => /^(authorization|dpop)$/i.test(name))
}

/** The instance's options as ky hands them to `extend`, and the connection made from them. */
interface Parking {
  reauth: Connection
  instance: CallOptions
  /** The instance's own origin (its prefix), worked out once. */
  origin: string | undefined
  /**
   * Calls of this instance are never parked: it sends its own `Authorization`, opts out, has
   * `beforeRequest` hooks of the user's (which may set a header reauth must respect), or was
   * extended with a function (its options are ky's to know).
   */
  off: boolean
  lot: ParkingLot
  /** A `fetch` given to a call or to `extend`, with reauth's response side in it. */
  wrap(fetch: unknown): Fetch
  /** Every call of this instance gets {@link Parking.afterResponse} (see `unseen`). */
  unseen: boolean
  afterResponse: ReauthAfterResponseHook
}

function parkingFor(
  reauth: Connection,
  instance: CallOptions,
  lot: ParkingLot,
  level: Pick<FetchLevelHooks, 'wrap' | 'afterResponse'>,
  unseenCalls: boolean,
  extendedByFunction = false,
): Parking {
  const hooks = instance.hooks?.beforeRequest
  const off =
    extendedByFunction ||
    instance.context?.reauth === false ||
    ownsAuthorization(instance.headers) ||
    (Array.isArray(hooks) && hooks.length > 0)
  return {
    reauth,
    instance,
    origin: prefixOrigin(instance),
    off,
    lot,
    wrap: level.wrap,
    afterResponse: level.afterResponse,
    unseen: unseenCalls,
  }
}

/**
 * The URL of a call as far as parking needs it: the `Request`'s or URL's own, an absolute
 * string, else the call's (or instance's) prefix joined with it; a relative string without
 * one is resolved by core as fetch will (the page's base URL).
 */
function urlOf(input: unknown, call: CallOptions, parking: Parking): string | undefined {
  if (input instanceof Request) return input.url
  if (input instanceof URL) return input.href
  if (typeof input !== 'string') return undefined
  if (ABSOLUTE.test(input)) return input
  const own =
    call.prefixUrl !== undefined || call.prefix !== undefined || call.baseUrl !== undefined
  const prefix = own ? (call.prefixUrl ?? call.prefix ?? call.baseUrl) : undefined
  const origin = own ? prefixOrigin({ ...parking.instance, ...call }) : parking.origin
  if (origin === undefined) return input
  const base = typeof prefix === 'string' && ABSOLUTE.test(prefix) ? prefix : origin
  return `${base.replace(/\/+$/, '')}/${input.replace(/^\/+/, '')}`
}

/**
 * Whether a call may be parked at all: reauth leaves it alone (it opts out, names its own
 * `Authorization`, has `beforeRequest` hooks of the caller's) or it may wait for a token.
 */
function parkable(input: unknown, call: CallOptions): boolean {
  if (call.context?.reauth === false || ownsAuthorization(call.headers)) return false
  if (call.hooks?.beforeRequest?.length) return false
  return !(
    input instanceof Request &&
    (input.headers.has('authorization') || input.headers.has('dpop'))
  )
}

/** ky's `TimeoutError` for a call whose time ran out while it was parked (nothing was sent). */
function parkedTimeout(url: string, method: string): Error {
  try {
    return timeoutError(new Request(url, { method }))
  } catch {
    const error = new Error(`Request timed out: ${method} ${url}`)
    error.name = 'TimeoutError'
    return error
  }
}

/** The parking of an instance `extend`ed from `parking`'s with `defaults`. */
function extendParking(parking: Parking, defaults: unknown): Parking {
  const { reauth, lot } = parking
  // Extended with a function: its options are ky's to know, so assume the worst.
  if (!isObject(defaults)) return parkingFor(reauth, parking.instance, lot, parking, true, true)
  const instance = { ...parking.instance, ...defaults } as CallOptions
  // The extend's hooks run after reauth's.
  return parkingFor(reauth, instance, lot, parking, parking.unseen || unseen(defaults, false))
}

/** `extend`'s defaults with their `fetch` (which replaces reauth's) wrapped. */
function wrapDefaults(parking: Parking, defaults: unknown): unknown {
  if (typeof defaults === 'function') {
    return (parent: unknown) => wrapDefaults(parking, (defaults as (p: unknown) => unknown)(parent))
  }
  if (!isObject(defaults) || !Object.hasOwn(defaults, 'fetch')) return defaults
  return { ...defaults, fetch: wrapFetchOption(parking, defaults.fetch) }
}

/**
 * Send a call through ky now, or — when the engine would make it wait for a refresh — park it
 * before ky builds it. The common case (a valid token) only reads the store: the URL is worked
 * out only when the call might wait, and only to decide where it waits: whether a token goes,
 * and where, is decided by the hooks from the URL ky really requests.
 */
function send(
  parking: Parking,
  call: (input: unknown, options: unknown) => unknown,
  input: unknown,
  options: unknown,
  verb: string | undefined,
): unknown {
  // No call can wait now (a valid token in a synchronous store): nothing to build for `hold`.
  if (parking.off || parking.reauth.calm()) return call(input, withCaller(parking, options))
  const own: CallOptions = isObject(options) ? (options as CallOptions) : {}
  if (!parkable(input, own)) return call(input, withCaller(parking, options))
  const method = verb ?? (typeof own.method === 'string' ? own.method.toUpperCase() : 'GET')
  const timeout = own.timeout ?? parking.instance.timeout ?? KY_TIMEOUT
  const parked = new KyCall(parking, call, input, options, timeout, method)
  const hold = parking.reauth.hold(parked)
  if (hold === undefined) return call(input, withCaller(parking, options))
  return parking.lot.park(hold, parked, (executor) => new Parked(executor, parked))
}

/** A call that may be parked, as `hold` reads it (a class: no closures per call while it waits). */
class KyCall extends KyParkedCall {
  readonly #parking: Parking
  readonly #call: (input: unknown, options: unknown) => unknown
  readonly #input: unknown
  readonly #options: unknown
  readonly method: string
  readonly timeout: number | false
  /** The call's timeout counts from when it was made: reauth's hooks bound any further wait by it. */
  readonly #deadline: number | undefined
  constructor(
    parking: Parking,
    call: (input: unknown, options: unknown) => unknown,
    input: unknown,
    options: unknown,
    timeout: number | false,
    method: string,
  ) {
    super()
    this.#parking = parking
    this.#call = call
    this.#input = input
    this.#options = options
    this.timeout = timeout
    this.#deadline = timeout === false ? undefined : Date.now() + timeout
    this.method = method
  }
  /** Read by `hold` only when the call might wait. */
  get url(): string {
    const own = isObject(this.#options) ? (this.#options as CallOptions) : {}
    return urlOf(this.#input, own, this.#parking) ?? ''
  }
  get signal(): AbortSignal | undefined {
    const own = isObject(this.#options) ? (this.#options as CallOptions) : {}
    return own.signal ?? (this.#input instanceof Request ? this.#input.signal : undefined)
  }
  protected send(pass: Pass): ResponsePromise {
    return this.#call(
      this.#input,
      withCaller(this.#parking, this.#options, this.#deadline, pass),
    ) as ResponsePromise
  }
  timeoutError(): Error {
    return parkedTimeout(this.url || String(this.#input), this.method)
  }
}

/**
 * The instance, its methods and the instances it `extend`s into: each passes the caller's
 * signal on, and parks a call that would wait for a refresh before ky builds it.
 */
function capture(instance: KyFunction, parking: Parking): KyFunction {
  const methods = new Map<PropertyKey, unknown>()
  const direct = (input: unknown, options: unknown) =>
    Reflect.apply(instance, undefined, [input, options])
  return new Proxy(instance, {
    apply(_target, _thisArg, args: unknown[]) {
      return send(parking, direct, args[0], args[1], undefined)
    },
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver)
      if (typeof value !== 'function') return value
      if (property === 'extend') {
        return (defaults: object) =>
          capture(
            (value as KyFunction['extend']).call(
              target,
              wrapDefaults(parking, defaults) as Parameters<KyFunction['extend']>[0],
            ),
            extendParking(parking, defaults),
          )
      }
      if (typeof property !== 'string' || !METHODS.has(property)) return value
      let method = methods.get(property)
      if (!method) {
        const call = (input: unknown, options: unknown) =>
          (value as (input: unknown, options: unknown) => unknown).call(target, input, options)
        const verb = property.toUpperCase()
        method = (input: unknown, options: unknown) => send(parking, call, input, options, verb)
        methods.set(property, method)
      }
      return method
    },
  })
}

/**
 * Extend a ky instance (ky 1 or ky 2) with reauth: the token goes to allowed origins only
 * (default: the engine's `origins`, else the instance's `prefixUrl` / `prefix` / `baseUrl`
 * origin); concurrent 401s make one refresh and each request is replayed once, body
 * byte-identical. Returns an instance of the same type; its `extend` keeps reauth. A refresh
 * function may use it: pass the refresh `signal` and its request goes untouched. Opt out per
 * request with `context: { reauth: false }`.
 *
 * @example
 * import ky from 'ky'
 * import { createEngine } from '@reauth/core'
 * import { withReauth } from '@reauth/ky'
 *
 * const engine = createEngine({ tokens, refresh })
 * const api = withReauth(ky.create({ prefixUrl: 'https://api.example.com' }), engine)
 * const me = await api.get('me').json()
 */
export function withReauth<K extends KyLike>(
  instance: K,
  engine: Engine,
  options: ReauthKyOptions = {},
): K {
  validateKy(instance)
  assertEngine(engine)
  const replayKy = instance.create({})
  let parking: Parking | undefined
  let level: FetchLevelHooks | undefined
  const extended = instance.extend((parent: Record<string, unknown>) => {
    if (!parking || !level) {
      const reauth = connect(engine, {
        origins: options.origins,
        base: prefixOrigin(parent),
        baseHint: 'the instance a prefixUrl (ky 1) / prefix or baseUrl (ky 2)',
      })
      level = createFetchLevel(reauth, replayKy)
      // The instance's own hooks run before reauth's: only its beforeRetry ones may swap a request.
      parking = parkingFor(
        reauth,
        parent as CallOptions,
        createParkingLot(),
        level,
        unseen(parent, true),
      )
    }
    // reauth sees each response in ky's `fetch` (the instance's own, or the global one).
    return { hooks: level.hooks, fetch: level.wrap(parent.fetch) }
  })
  if (!parking) throw new ReauthOptionsError('"instance" must be a ky instance (ky ≥ 1)')
  return capture(extended, parking) as unknown as K
}
