/**
 * Parking an axios call before axios builds it (its merged config, its `AxiosHeaders` copies,
 * the interceptor chain): while a refresh the call would wait for runs, the call is only what
 * its caller passed plus one promise. The instance's methods (`get`, `post`, `request`, …) are
 * wrapped for it; when the refresh is done the call goes to axios as if just made, and the
 * request interceptor attaches the token it waited for at once. Calling the instance itself
 * (`api(config)`) cannot be wrapped: such a call waits in the interceptor, as before.
 */
import {
  type Connection,
  createParkingLot,
  type ParkedCall,
  type ParkingLot,
  type Pass,
} from '@reauth/core/adapter'
import type {
  AxiosInstance,
  AxiosRequestConfig,
  AxiosResponse,
  InternalAxiosRequestConfig,
} from 'axios'

/**
 * What a call that was parked carries into axios: the token it waited for and its deadline.
 * A config key (not a symbol: axios < 1.12 drops symbols when it merges configs) holding a
 * class instance, which axios's merge keeps as it is.
 */
export const PARKED = 'reauth.parked'

/** A parked call whose timeout ran out: the interceptor throws axios's timeout error for it. */
export const TIMED_OUT: unique symbol = Symbol('reauth.timedOut')

/** What a parked call hands the request interceptor. */
export class Ticket {
  constructor(
    /** The token it waited for; `undefined` when it ended while parked. */
    readonly pass: Pass | undefined,
    /** When the call's timeout runs out (ms since the epoch), counted from when it was made. */
    readonly deadline: number | undefined,
    /** Why it ended while parked (a refresh failure, its abort, {@link TIMED_OUT}): the interceptor throws it. */
    readonly failure?: { error: unknown },
  ) {}
}

/** The ticket a config carries, taken off it (so axios and the caller never see it). */
export function takeTicket(config: InternalAxiosRequestConfig): Ticket | undefined {
  const record = config as unknown as Record<string, unknown>
  const ticket = record[PARKED]
  if (ticket === undefined) return undefined
  delete record[PARKED]
  return ticket instanceof Ticket ? ticket : undefined
}

/** What parking needs from the rest of the adapter. */
export interface ParkingHelpers {
  /** The URL axios will request for `config` (its `baseURL`, `url`, `allowAbsoluteUrls`). */
  url(config: AxiosRequestConfig): string
  /** Request interceptors that run before reauth's (they may set headers): calls are not parked then. */
  interceptedBefore(config: AxiosRequestConfig | undefined): boolean
}

/** How each wrapped method takes its arguments. */
type Shape = 'request' | 'url' | 'data'

const SHAPES: Record<string, Shape> = {
  request: 'request',
  get: 'url',
  delete: 'url',
  head: 'url',
  options: 'url',
  post: 'data',
  put: 'data',
  patch: 'data',
  query: 'data',
  postForm: 'data',
  putForm: 'data',
  patchForm: 'data',
}

type Method = (...args: unknown[]) => Promise<AxiosResponse>

/**
 * `headers` (a plain object or `AxiosHeaders`) names an `Authorization` or a DPoP proof with a
 * value, as `AxiosHeaders#has` finds them (any case), in one pass over the names.
 */
export function namesAuthorization(headers: unknown): boolean {
  if (typeof headers !== 'object' || headers === null) return false
  const record = headers as Record<string, unknown>
  const names = Object.keys(record)
  for (let i = 0; i < names.length; i++) {
    const name = names[i] as string
    // Only names of the right length are lowered: most headers are neither.
    if (name.length !== 13 && name.length !== 4) continue
    const lower = name.toLowerCase()
    if ((lower === 'authorization' || lower === 'dpop') && record[name] !== undefined) return true
  }
  return false
}

/** `headers` (a call's or the defaults') give `method` an `Authorization` or a DPoP proof. */
function authorizes(headers: unknown, method: string): boolean {
  if (typeof headers !== 'object' || headers === null) return false
  const groups = headers as Record<string, unknown>
  return (
    namesAuthorization(headers) ||
    namesAuthorization(groups.common) ||
    namesAuthorization(groups[method])
  )
}

/** One call through a wrapped method (a class: no closures per call while it is parked). */
class AxiosCall implements ParkedCall<AxiosResponse> {
  readonly timeout: number | undefined
  readonly #at: number
  constructor(
    readonly parking: Parking,
    readonly original: Method,
    readonly shape: Shape,
    readonly args: unknown[],
    /** The caller's config (`undefined` when none was passed). */
    readonly config: AxiosRequestConfig | undefined,
    readonly method: string,
  ) {
    const timeout = config?.timeout ?? parking.instance.defaults?.timeout
    this.timeout = typeof timeout === 'number' && timeout > 0 ? timeout : undefined
    this.#at = Date.now()
  }

  // What `hold` reads, and only when the call might wait (the token expires soon).
  get url(): string {
    const config = this.config ?? {}
    const url =
      this.shape === 'request' && typeof this.args[0] !== 'string' ? config.url : this.args[0]
    const defaults = this.parking.instance.defaults
    const parts: AxiosRequestConfig = {}
    const baseURL = config.baseURL ?? defaults?.baseURL
    if (baseURL !== undefined) parts.baseURL = baseURL
    if (typeof url === 'string') parts.url = url
    const allowAbsoluteUrls = config.allowAbsoluteUrls ?? defaults?.allowAbsoluteUrls
    if (allowAbsoluteUrls !== undefined) parts.allowAbsoluteUrls = allowAbsoluteUrls
    return this.parking.helpers.url(parts)
  }
  /** The call is not reauth's to park: it sets its own `Authorization`, or something may. */
  get hasAuthorization(): boolean {
    const { config, method, parking } = this
    return (
      config?.cancelToken !== undefined ||
      authorizes(config?.headers, method) ||
      authorizes(parking.instance.defaults?.headers, method) ||
      parking.helpers.interceptedBefore(config)
    )
  }
  get signal(): AbortSignal | undefined {
    return (this.config?.signal as AbortSignal | undefined) ?? undefined
  }

  go(pass: Pass): Promise<AxiosResponse> {
    return this.#send(pass, undefined)
  }
  timeoutError(): unknown {
    return TIMED_OUT
  }
  /** A call that ended while parked still goes to axios, failing in reauth's interceptor:
   * axios's response interceptors see its error, with the config axios built. */
  fail(error: unknown): Promise<AxiosResponse> {
    return this.#send(undefined, { error })
  }
  #send(pass: Pass | undefined, failure: { error: unknown } | undefined): Promise<AxiosResponse> {
    const { args, original } = this
    // Detached meanwhile: the call goes to axios as it was made.
    if (!this.parking.active) return original(...args)
    const deadline = this.timeout === undefined ? undefined : this.#at + this.timeout
    const ticket = new Ticket(pass, deadline, failure)
    const config = { ...this.config, [PARKED]: ticket }
    if (this.shape === 'url') return original(args[0], config)
    if (this.shape === 'data') return original(args[0], args[1], config)
    return typeof args[0] === 'string'
      ? original(args[0], config)
      : original({ ...(args[0] as object), [PARKED]: ticket })
  }
}

interface Parking {
  instance: AxiosInstance
  helpers: ParkingHelpers
  /** Until `detach`: a wrapper someone else wrapped again stays, but only passes calls on. */
  active: boolean
}

/** One wrapped method of one instance. */
interface Wrapped {
  parking: Parking
  reauth: Connection
  lot: ParkingLot
  original: Method
  shape: Shape
  /** The method's verb (`post` for `postForm`). */
  method: string
}

/** A call through a wrapped method: parked when it would wait for a refresh, else passed on. */
function callWrapped(entry: Wrapped, self: unknown, args: unknown[]): Promise<AxiosResponse> {
  const { parking, reauth, original, shape } = entry
  const config = (
    shape === 'request'
      ? typeof args[0] === 'string'
        ? args[1]
        : args[0]
      : shape === 'url'
        ? args[1]
        : args[2]
  ) as AxiosRequestConfig | undefined
  const defaults = parking.instance.defaults
  // A valid token (the common case): nothing to build, nothing to decide.
  if (!parking.active || (config?.reauth ?? defaults?.reauth) === false || reauth.calm()) {
    return Reflect.apply(original, self, args)
  }
  const verb = (
    shape === 'request' ? String(config?.method ?? defaults?.method ?? 'get') : entry.method
  ).toLowerCase()
  const call = new AxiosCall(parking, original, shape, args, config, verb)
  const hold = reauth.hold(call)
  if (hold === undefined) return Reflect.apply(original, self, args)
  return entry.lot.park(hold, call)
}

/**
 * Wrap the instance's methods so a call that would wait for a refresh is parked before axios
 * builds it. Returns a function that puts the methods back (those nobody replaced since).
 */
export function parkCalls(
  instance: AxiosInstance,
  reauth: Connection,
  helpers: ParkingHelpers,
): () => void {
  const lot = createParkingLot()
  const parking: Parking = { instance, helpers, active: true }
  const wrapped: [string, Method, Method][] = []
  const target = instance as unknown as Record<string, unknown>
  for (const [name, shape] of Object.entries(SHAPES)) {
    const original = target[name]
    if (typeof original !== 'function') continue
    const method = name.replace(/Form$/, '')
    const entry: Wrapped = { parking, reauth, lot, original: original as Method, shape, method }
    // A thin closure per method: the work is in `callWrapped`, one optimised copy for all.
    const wrapper = function (this: unknown, ...args: unknown[]): Promise<AxiosResponse> {
      return callWrapped(entry, this, args)
    }
    target[name] = wrapper
    wrapped.push([name, original as Method, wrapper])
  }
  return () => {
    parking.active = false
    for (const [name, original, wrapper] of wrapped) {
      if (target[name] === wrapper) target[name] = original
    }
  }
}
