import { type Engine, ReauthOptionsError } from '@reauth/core'
import { assertEngine, type Connection, connect } from '@reauth/core/adapter'
import { CALLER, type CallerOptions, isObject } from './ky-majors.js'
import { createParkingLot, type ParkingLot, type ResponsePromise } from './park.js'
import { type PrefixOptions, prefixOrigin } from './prefix-origin.js'
import {
  createHooks,
  type KyFunction,
  type KyLike,
  type ReauthKyOptions,
  validateKy,
} from './reauth-hooks.js'

const METHODS = new Set(['get', 'post', 'put', 'patch', 'head', 'delete'])

/**
 * Keep the caller's own `signal` in `context` (ky 1 hands hooks only the one it derives from
 * it), and for a call that was parked, its deadline.
 */
function withCaller(options: unknown, deadline?: number): unknown {
  if (deadline === undefined && (typeof options !== 'object' || options === null)) return options
  const { signal, context } = (options ?? {}) as { signal?: unknown; context?: unknown }
  if (!(signal instanceof AbortSignal) && deadline === undefined) return options
  const caller: CallerOptions = {}
  if (signal instanceof AbortSignal) caller.signal = signal
  if (deadline !== undefined) caller.deadline = deadline
  return {
    ...(options as object),
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

/**
 * Where a call goes, as far as its origin: the `Request`'s or URL's own, an absolute string,
 * else the origin of the call's (or instance's) prefix; a relative string without one is
 * resolved by core as fetch will (the page's base URL).
 */
function urlOf(input: unknown, call: CallOptions, instance: PrefixOptions): string | undefined {
  if (input instanceof Request) return input.url
  if (input instanceof URL) return input.href
  if (typeof input !== 'string') return undefined
  if (ABSOLUTE.test(input)) return input
  const own = prefixOrigin(call)
  return own ?? prefixOrigin(instance) ?? input
}

/** The instance's options as ky hands them to `extend`, and the connection made from them. */
interface Parking {
  reauth: Connection
  instance: CallOptions
  lot: ParkingLot
}

/**
 * Park a call before ky builds it when the engine would make it wait for a refresh;
 * `undefined` when it may go now (the common case: ky builds it, the hooks attach).
 */
function holdFor(parking: Parking, input: unknown, options: unknown, method: string | undefined) {
  const call: CallOptions = isObject(options) ? (options as CallOptions) : {}
  if (call.context?.reauth === false || ownsAuthorization(call.headers)) return undefined
  if (input instanceof Request && (input.headers.has('authorization') || input.headers.has('dpop')))
    return undefined
  const url = urlOf(input, call, parking.instance)
  if (url === undefined) return undefined
  return parking.reauth.hold({
    url,
    method: method ?? (typeof call.method === 'string' ? call.method : undefined),
    signal: call.signal,
  })
}

/**
 * The call's options after `elapsed` ms parked: what is left of its timeout for ky, and the
 * deadline for reauth's hooks (a call whose time ran out while parked ends with ky's
 * `TimeoutError` before anything is sent).
 */
function timeLeft(options: unknown, timeout: number | false, elapsed: number): unknown {
  if (timeout === false) return withCaller(options)
  const rest = { timeout: Math.max(1, timeout - elapsed) }
  const deadline = Date.now() + timeout - elapsed
  return withCaller(isObject(options) ? { ...options, ...rest } : rest, deadline)
}

/** Send a call through ky now, or park it first (see {@link holdFor}). */
function send(
  parking: Parking,
  call: (input: unknown, options: unknown) => unknown,
  input: unknown,
  options: unknown,
  method: string | undefined,
): unknown {
  const hold = holdFor(parking, input, options, method)
  if (hold === undefined) return call(input, withCaller(options))
  const own = isObject(options) ? (options as CallOptions) : {}
  const timeout = own.timeout ?? parking.instance.timeout ?? KY_TIMEOUT
  return parking.lot.park(
    hold,
    (elapsed) => call(input, timeLeft(options, timeout, elapsed)) as ResponsePromise,
    { timeout, signal: own.signal },
  )
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
          capture((value as KyFunction['extend']).call(target, defaults), {
            ...parking,
            instance: { ...parking.instance, ...(isObject(defaults) ? defaults : {}) },
          })
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
  const extended = instance.extend((parent: Record<string, unknown>) => {
    parking ??= {
      reauth: connect(engine, {
        origins: options.origins,
        base: prefixOrigin(parent),
        baseHint: 'the instance a prefixUrl (ky 1) / prefix or baseUrl (ky 2)',
      }),
      instance: parent as CallOptions,
      lot: createParkingLot(),
    }
    return { hooks: createHooks(parking.reauth, { replayKy }) }
  })
  if (!parking) throw new ReauthOptionsError('"instance" must be a ky instance (ky ≥ 1)')
  return capture(extended, parking) as unknown as K
}
