/**
 * Parking an axios call before axios builds it (its merged config, its `AxiosHeaders` copies,
 * the interceptor chain): while a refresh the call would wait for runs, the call is only what
 * its caller passed plus one promise. The instance's methods (`get`, `post`, `request`, …) are
 * wrapped for it; when the refresh is done the call goes to axios as if just made, and the
 * request interceptor attaches the token it waited for at once. Calling the instance itself
 * (`api(config)`) cannot be wrapped: such a call waits in the interceptor, as before.
 */
import { type Connection, createParkingLot, type ParkedCall, type Pass } from '@reauth/core/adapter'
import axios, {
  type AxiosInstance,
  type AxiosRequestConfig,
  type AxiosResponse,
  type InternalAxiosRequestConfig,
} from 'axios'

/**
 * What a call that was parked carries into axios: the token it waited for and its deadline.
 * A config key (not a symbol: axios < 1.12 drops symbols when it merges configs) holding a
 * class instance, which axios's merge keeps as it is.
 */
export const PARKED = 'reauth.parked'

/** What a parked call hands the request interceptor. */
export class Ticket {
  constructor(
    readonly pass: Pass,
    /** When the call's timeout runs out (ms since the epoch), counted from when it was made. */
    readonly deadline: number | undefined,
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
  /** axios's timeout error for a call whose time ran out while it was parked. */
  timeoutError(config: InternalAxiosRequestConfig, timeout: number): unknown
  /** What the caller gets for a refresh failure or its abort (axios's `CanceledError`). */
  translate(error: unknown, config: InternalAxiosRequestConfig): unknown
  /** Request interceptors run before reauth's (they may set headers): then calls are not parked. */
  interceptedBefore(): boolean
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

const HEADER_NAMES = ['Authorization', 'authorization', 'DPoP', 'dpop'] as const

/** `headers` (a plain object or `AxiosHeaders`) names an `Authorization` or a DPoP proof. */
function namesAuthorization(headers: unknown): boolean {
  if (typeof headers !== 'object' || headers === null) return false
  const has = (headers as { has?: unknown }).has
  if (typeof has === 'function') {
    return Boolean(has.call(headers, 'Authorization')) || Boolean(has.call(headers, 'DPoP'))
  }
  for (const name of Object.keys(headers)) {
    const lower = name.toLowerCase()
    if (lower === 'authorization' || lower === 'dpop') return true
  }
  return false
}

/** The instance's defaults send their own `Authorization` for `method`. */
function defaultsAuthorize(instance: AxiosInstance, method: string): boolean {
  const headers = instance.defaults?.headers as Record<string, unknown> | undefined
  if (!headers) return false
  for (const name of HEADER_NAMES) if (headers[name] !== undefined) return true
  return namesAuthorization(headers.common) || namesAuthorization(headers[method])
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
    const config = this.config
    return (
      config?.cancelToken !== undefined ||
      namesAuthorization(config?.headers) ||
      defaultsAuthorize(this.parking.instance, this.method) ||
      this.parking.helpers.interceptedBefore()
    )
  }
  get signal(): AbortSignal | undefined {
    return (this.config?.signal as AbortSignal | undefined) ?? undefined
  }

  go(pass: Pass): Promise<AxiosResponse> {
    const ticket = new Ticket(
      pass,
      this.timeout === undefined ? undefined : this.#at + this.timeout,
    )
    const config = { ...this.config, [PARKED]: ticket }
    const { args } = this
    if (this.shape === 'url') return this.original(args[0], config)
    if (this.shape === 'data') return this.original(args[0], args[1], config)
    return typeof args[0] === 'string'
      ? this.original(args[0], config)
      : this.original({ ...(args[0] as object), [PARKED]: ticket })
  }
  /** The config axios would have built, for the errors of a call that never reached it. */
  #built(): InternalAxiosRequestConfig {
    const own: AxiosRequestConfig = { ...this.config, method: this.method }
    const url =
      this.shape === 'request' && typeof this.args[0] !== 'string' ? own.url : this.args[0]
    if (typeof url === 'string') own.url = url
    if (this.shape === 'data') own.data = this.args[1]
    const defaults = (this.parking.instance.defaults ?? {}) as AxiosRequestConfig
    return axios.mergeConfig(defaults, own) as InternalAxiosRequestConfig
  }
  timeoutError(): unknown {
    return this.parking.helpers.timeoutError(this.#built(), this.timeout ?? 0)
  }
  failed(error: unknown): unknown {
    return this.parking.helpers.translate(error, this.#built())
  }
}

interface Parking {
  instance: AxiosInstance
  helpers: ParkingHelpers
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
  const parking: Parking = { instance, helpers }
  const wrapped: [string, Method, Method][] = []
  const target = instance as unknown as Record<string, unknown>
  for (const [name, shape] of Object.entries(SHAPES)) {
    const original = target[name]
    if (typeof original !== 'function') continue
    const method = name.replace(/Form$/, '')
    const wrapper = function (this: unknown, ...args: unknown[]): Promise<AxiosResponse> {
      const config = (
        shape === 'request'
          ? typeof args[0] === 'string'
            ? args[1]
            : args[0]
          : shape === 'url'
            ? args[1]
            : args[2]
      ) as AxiosRequestConfig | undefined
      if (config?.reauth === false) return Reflect.apply(original, this, args)
      const verb =
        shape === 'request' ? String(config?.method ?? instance.defaults?.method ?? 'get') : method
      const call = new AxiosCall(parking, original as Method, shape, args, config, verb)
      const hold = reauth.hold(call)
      if (hold === undefined) return Reflect.apply(original, this, args)
      return lot.park(hold, call)
    }
    target[name] = wrapper
    wrapped.push([name, original as Method, wrapper])
  }
  return () => {
    for (const [name, original, wrapper] of wrapped) {
      if (target[name] === wrapper) target[name] = original
    }
  }
}
