import { type AuthResponse, type Engine, type OriginPolicy, ReauthOptionsError } from '@reauth/core'
import {
  baseOrigin,
  type Connection,
  type Credentials,
  connect,
  type DeadlineSignal,
  deadlineSignal,
  LATER,
  type OutgoingRequest,
  unreplayableBody,
} from '@reauth/core/adapter'
import {
  AxiosError,
  AxiosHeaders,
  type AxiosInstance,
  type AxiosRequestConfig,
  type AxiosResponse,
  CanceledError,
  type InternalAxiosRequestConfig,
  isAxiosError,
} from 'axios'
import { namesAuthorization, PARKED, parkCalls, TIMED_OUT, takeTicket } from './park.js'

declare module 'axios' {
  interface AxiosRequestConfig {
    /**
     * `false`: reauth leaves this request alone (no token, no refresh, no replay).
     * A replay reauth sends carries `reauth: false`, so it is never intercepted again.
     */
    reauth?: boolean
  }
}

/** Options of {@link attachReauth}. */
export interface AttachReauthOptions {
  /**
   * Origins that receive the token. Default: the origin of the instance's `baseURL`
   * (the page's origin when `baseURL` is relative in a browser), else the engine's
   * `origins`. Required when there is neither.
   */
  origins?: OriginPolicy
}

/** Removes the interceptors {@link attachReauth} added (axios `eject`). Safe to call twice. */
export type DetachReauth = () => void

/**
 * The credentials reauth put on a config, so headers the caller set are told apart from
 * those reauth set. Held in a private field: never serialised, never shown by `util.inspect`.
 */
class Attached {
  readonly #sent: Credentials
  constructor(sent: Credentials) {
    this.#sent = sent
  }
  get sent(): Credentials {
    return this.#sent
  }
  /** The config still carries what reauth set (nobody replaced its `Authorization`). */
  on(headers: AxiosHeaders): boolean {
    return headers.get('Authorization') === this.#sent.headers.authorization
  }
}

const ATTACHED = Symbol('reauth.attached')

type Config = InternalAxiosRequestConfig & { [ATTACHED]?: Attached }

/** What axios takes for an absolute URL (a scheme, or `//` alone): sent as it is. */
const ABSOLUTE = /^([a-z][a-z\d+\-.]*:)?\/\//i

/** Rethrow: a request interceptor's `rejected` (axios < 1.12 calls it without checking). */
function rethrow(error: unknown): never {
  throw error
}

/** A config as the engine reads it. */
function outgoing(config: Config): OutgoingRequest {
  return {
    url: fullUrl(config),
    method: config.method,
    hasAuthorization: namesAuthorization(config.headers),
    // The caller's own signal object: it is how the engine recognises the requests of
    // its refresh function, which must not wait on the refresh they belong to.
    signal: config.signal as AbortSignal | undefined,
  }
}

/**
 * The URL of a request as axios builds it (`buildFullPath`: `baseURL` joined with `url` unless
 * `url` is absolute and `allowAbsoluteUrls` is not `false`), without its query (`params`): the
 * origin and path are what reauth decides on. Worked out here rather than with
 * `instance.getUri`, which merges the config with the defaults again for every request. A
 * relative one is resolved by core as XHR and fetch will (against the document's base URL).
 */
function fullUrl(config: AxiosRequestConfig): string {
  const url = typeof config.url === 'string' ? config.url : ''
  const base = config.baseURL
  const absolute = config.allowAbsoluteUrls !== false
  // The same URL as the last request (the common case): the same string, worked out once.
  const last = lastUrl
  if (last.url === url && last.base === base && last.absolute === absolute) return last.full
  const full =
    !base || (absolute && ABSOLUTE.test(url))
      ? url
      : url
        ? `${base.replace(/\/?\/$/, '')}/${url.replace(/^\/+/, '')}`
        : base
  lastUrl = { url, base, absolute, full }
  return full
}

let lastUrl: { url: string; base: string | undefined; absolute: boolean; full: string } = {
  url: '',
  base: undefined,
  absolute: true,
  full: '',
}

function headerText(headers: unknown, name: string): string | null {
  const value = AxiosHeaders.from(headers as AxiosHeaders).get(name)
  if (value === undefined || value === null || value === false) return null
  return Array.isArray(value) ? value.join(', ') : String(value)
}

function isAxiosResponse(value: unknown): value is AxiosResponse {
  if (typeof value !== 'object' || value === null) return false
  const { config, status, headers } = value as Partial<AxiosResponse>
  return typeof status === 'number' && typeof config === 'object' && typeof headers === 'object'
}

/** An axios response as the engine reads it (a class: no closure per response). */
class ResponseView implements AuthResponse {
  readonly status: number
  readonly #response: AxiosResponse
  constructor(response: AxiosResponse) {
    this.status = response.status
    this.#response = response
  }
  get headers(): AuthResponse['headers'] {
    return this
  }
  get(name: string): string | null {
    return headerText(this.#response.headers, name)
  }
}

function authResponse(response: AxiosResponse): AuthResponse {
  return new ResponseView(response)
}

/** What a replay ended with, as the engine looks at it: its response, or the one its error carries. */
function inspect(
  outcome: { ok: true; value: AxiosResponse } | { ok: false; error: unknown },
): AuthResponse | undefined {
  if (outcome.ok) return authResponse(outcome.value)
  const { error } = outcome
  return isAxiosError(error) && error.response ? authResponse(error.response) : undefined
}

function randomBoundary(): string {
  const bytes = new Uint8Array(16)
  globalThis.crypto.getRandomValues(bytes)
  return `reauth-${Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('')}`
}

/**
 * A multipart body gets a new random boundary at every send, so a replay would differ
 * from the first send. Both adapters (http, fetch) honour a boundary named in
 * `Content-Type`: naming one before the first send makes the replay byte-identical.
 */
function pinBoundary(config: InternalAxiosRequestConfig): void {
  // No body (a GET, say): nothing to pin.
  if (config.data === undefined || config.data === null) return
  const contentType = headerText(config.headers, 'Content-Type')
  const isForm = typeof FormData !== 'undefined' && config.data instanceof FormData
  if (contentType === null ? !isForm : !/^\s*multipart\/form-data/i.test(contentType)) return
  if (contentType !== null && /boundary=/i.test(contentType)) return
  config.headers.set('Content-Type', `multipart/form-data; boundary=${randomBoundary()}`)
}

/** The config without the headers reauth put on it, for errors reauth creates. */
function withoutToken(config: Config): InternalAxiosRequestConfig {
  const attached = config[ATTACHED]
  if (attached?.on(config.headers) !== true) return config
  const headers = new AxiosHeaders(config.headers)
  for (const name of Object.keys(attached.sent.headers)) headers.delete(name)
  const copy: Config = { ...config, headers }
  delete copy[ATTACHED]
  return copy
}

/** One marker per credentials object: the engine hands the same one to every send of a set. */
const markers = new WeakMap<Credentials, Attached>()

/** The config, ready to send with `sent` (or untouched when `undefined`). */
function withCredentials(config: Config, sent: Credentials | undefined): Config {
  const left = remaining(config)
  if (left !== undefined) config.timeout = left
  if (sent === undefined) return config
  setCredentials(config.headers, sent)
  let marker = markers.get(sent)
  if (!marker) {
    marker = new Attached(sent)
    markers.set(sent, marker)
  }
  config[ATTACHED] = marker
  pinBoundary(config)
  return config
}

/** Set the headers reauth computed for a send. */
function setCredentials(headers: AxiosHeaders, sent: Credentials): void {
  const names = Object.keys(sent.headers)
  for (let i = 0; i < names.length; i++) {
    const name = names[i] as string
    headers.set(name, sent.headers[name] as string)
  }
}

/** Map what the engine threw to what axios would have thrown. */
const DEADLINE = Symbol('reauth.deadline')

type Timed = Config & { [DEADLINE]?: { at: number; timeout: number } }

/** The timeout errors reauth raised for a call's deadline: handed to the caller as they are. */
const deadlineErrors = new WeakSet<object>()

/** axios's own timeout error for this config, as its adapters raise it. */
function timeoutError(config: Config, timeout: number): AxiosError {
  const clarify = config.transitional?.clarifyTimeoutError === true
  const error = new AxiosError(
    config.timeoutErrorMessage ?? `timeout of ${timeout}ms exceeded`,
    clarify ? AxiosError.ETIMEDOUT : AxiosError.ECONNABORTED,
    withoutToken(config),
  )
  deadlineErrors.add(error)
  return error
}

/**
 * The signal a wait on the refresh (or in the replay queue) ends on: the caller's own, and —
 * when the call has a `timeout` — its deadline, which bounds the whole call, waits included,
 * with axios's usual timeout error. {@link remaining} gives the next send what is left.
 */
function waitSignal(config: Timed): DeadlineSignal {
  startDeadline(config)
  const deadline = config[DEADLINE]
  return deadlineSignal(deadline?.at, config.signal as AbortSignal | undefined, () =>
    timeoutError(config, deadline?.timeout ?? 0),
  )
}

/** The call's deadline, from its first pass through reauth (a `timeout` bounds the whole call). */
function startDeadline(config: Timed): void {
  if (config[DEADLINE] === undefined && typeof config.timeout === 'number' && config.timeout > 0) {
    config[DEADLINE] = { at: Date.now() + config.timeout, timeout: config.timeout }
  }
}

/** What is left of the call's timeout for its next send (at least 1 ms). */
function remaining(config: Timed): number | undefined {
  const deadline = config[DEADLINE]
  return deadline === undefined ? undefined : Math.max(1, deadline.at - Date.now())
}

/** What the engine threw, as axios would have thrown it: its abort error, or reauth's own copy. */
function translate(error: unknown, config: Config): unknown {
  const signal = config.signal as AbortSignal | undefined
  if (signal?.aborted && error === signal.reason && !deadlineErrors.has(error as object)) {
    // axios's usual abort error, carrying the config as axios does, minus reauth's token.
    return new CanceledError(undefined, withoutToken(config))
  }
  return error
}

/**
 * reauth's interceptors on one instance: a class, so every instance shares one optimised copy
 * of their code (closures made per `attachReauth` would start cold for every new instance).
 */
class Interceptors {
  /** reauth's synchronous request interceptor's id; its other one is the next id. */
  requestId = -1
  /** The response interceptor's id (interceptors after it run twice on a replay). */
  responseId = -1
  #warned = false
  /** The config {@link Interceptors.goesNow} let through last, and the credentials it found. */
  #nowConfig: Config | undefined = undefined
  #nowSent: Credentials | undefined = undefined
  /** The config `goesNow` answered for last, read by the other interceptor's `runWhen` right after. */
  #decided: Config | undefined = undefined
  #goes = false
  constructor(
    readonly reauth: Connection,
    readonly instance: AxiosInstance,
  ) {}

  /**
   * `runWhen` of reauth's synchronous request interceptor: the request is authorised at once
   * (a valid token, a call not parked, no interceptor that runs before reauth's and could
   * change it), so axios may send it in the same turn, as it sends a call without
   * interceptors. Otherwise the other interceptor runs, which may wait.
   */
  goesNow(config: Config): boolean {
    const goes = this.#goesNow(config)
    this.#decided = config
    this.#goes = goes
    return goes
  }

  /** `runWhen` of the other request interceptor: the synchronous one did not take `config`. */
  wentNow(config: Config): boolean {
    const goes = this.#decided === config && this.#goes
    this.#decided = undefined
    return goes
  }

  #goesNow(config: Config): boolean {
    if (config.reauth === false) return true
    if (PARKED in config || config[ATTACHED] !== undefined || this.interceptedBefore(config)) {
      return false
    }
    const sent = this.reauth.ready(outgoing(config))
    if (sent === LATER) return false
    this.#nowConfig = config
    this.#nowSent = sent
    return true
  }

  /** The synchronous request interceptor: applies what {@link Interceptors.goesNow} found. */
  onRequestNow(config: Config): Config | Promise<Config> {
    if (config.reauth === false) return config
    // Another config: axios took its promise chain (an interceptor of yours is asynchronous)
    // and another call was made meanwhile. The usual step decides again.
    if (this.#nowConfig !== config) return this.onRequest(config)
    const sent = this.#nowSent
    this.#nowConfig = undefined
    this.#nowSent = undefined
    startDeadline(config)
    return withCredentials(config, sent)
  }

  /**
   * Request interceptors that run before reauth's (axios's default order runs those added
   * after first; with `transitional.legacyInterceptorReqResOrdering: false`, those added
   * before): they may set headers or change the URL. reauth's own removed
   * (`interceptors.request.clear()`) counts as one.
   */
  interceptedBefore(config: AxiosRequestConfig | undefined): boolean {
    const handlers = this.instance.interceptors.request.handlers ?? []
    const first = this.requestId
    if (!handlers[first] && !handlers[first + 1]) return true
    const legacy =
      config?.transitional?.legacyInterceptorReqResOrdering ??
      this.instance.defaults?.transitional?.legacyInterceptorReqResOrdering
    const from = legacy === false ? 0 : first + 2
    const to = legacy === false ? first : handlers.length
    for (let i = from; i < to; i++) if (handlers[i]) return true
    return false
  }

  /** A chain, not an async function: a request waiting for a refresh holds no suspended frame. */
  onRequest(config: Config): Config | Promise<Config> {
    const { reauth } = this
    // A call that was parked: the token it waited for, and its deadline from when it was made;
    // or why it ended while parked, thrown here so axios's response interceptors see it.
    const ticket = takeTicket(config)
    if (ticket?.failure) {
      const { error } = ticket.failure
      throw error === TIMED_OUT
        ? timeoutError(config, typeof config.timeout === 'number' ? config.timeout : 0)
        : translate(error, config)
    }
    if (config.reauth === false) return config
    const attached = config[ATTACHED]
    if (attached !== undefined) {
      delete config[ATTACHED]
      // Headers reauth put on an earlier send of this config (e.g. axios-retry resending
      // `error.config`) are reauth's to replace; any other is the caller's.
      if (attached.on(config.headers)) {
        for (const name of Object.keys(attached.sent.headers)) config.headers.delete(name)
      }
    }
    // The call's deadline starts now (or started when it was parked); its timer only if the
    // request really waits.
    if (ticket?.deadline !== undefined && typeof config.timeout === 'number') {
      ;(config as Timed)[DEADLINE] = { at: ticket.deadline, timeout: config.timeout }
    }
    startDeadline(config)
    const request = outgoing(config)
    // A valid token: set at once, no promise, no turn.
    const now = reauth.ready(request, ticket?.pass)
    if (now !== LATER) return withCredentials(config, now)
    let wait: DeadlineSignal | undefined
    return reauth
      .attach(request, {
        signal: () => {
          wait = waitSignal(config)
          return wait.signal
        },
        pass: ticket?.pass,
      })
      .then(
        (sent) => {
          wait?.done()
          return withCredentials(config, sent)
        },
        (error: unknown) => {
          wait?.done()
          throw translate(error, config)
        },
      )
  }

  /**
   * The response-side step for a response to a config reauth authorised: the replay's
   * response, or `undefined` (decided at once) to hand `response` (or `axiosError`) on as it is.
   */
  respond(
    config: Config,
    response: AxiosResponse,
    axiosError?: AxiosError,
  ): Promise<AxiosResponse> | undefined {
    const steps = this
    const attached = config.reauth === false ? undefined : config[ATTACHED]
    if (attached?.on(config.headers) !== true) return undefined
    const view = authResponse(response)
    let wait: DeadlineSignal | undefined
    // Described (and a deadline started) only for a response reauth recovers from.
    const replay = steps.reauth.respond<AxiosResponse>(attached.sent, view, () => {
      wait = waitSignal(config)
      return {
        response: view,
        method: config.method,
        // Built only when needed (a log line, a DPoP proof): a waiter holds no URL string.
        get url() {
          return fullUrl(config)
        },
        unreplayable: unreplayableBody(config.data),
        signal: wait.signal,
        errorContext: { response: axiosError },
        inspect,
        resend(next) {
          const headers = new AxiosHeaders(config.headers)
          setCredentials(headers, next)
          const retry: Config = {
            ...config,
            headers,
            // `data` is what the first send serialised: sent again as is, byte for byte.
            transformRequest: [(data: unknown) => data],
            reauth: false,
          }
          delete retry[ATTACHED]
          steps.warnIfNotLast()
          // What is left of the call's timeout when the replay really starts (after the queue).
          const left = remaining(config)
          if (left !== undefined) retry.timeout = left
          return steps.instance.request(retry)
        },
      }
    })
    const deadline = wait
    // Without a signal or a timeout there is nothing to release or translate: the waiter
    // holds only the engine's promise.
    if (replay === undefined || deadline === undefined || deadline.signal === undefined) {
      deadline?.done()
      return replay
    }
    return replay.then(
      (replayed) => {
        deadline.done()
        return replayed
      },
      (failure: unknown) => {
        deadline.done()
        throw translate(failure, config)
      },
    )
  }

  onResponse(response: AxiosResponse): AxiosResponse | Promise<AxiosResponse> {
    // A `validateStatus` that accepts 401 makes axios resolve it: recover here too. An
    // interceptor registered earlier may already have turned the response into something
    // else (its data): that is not ours to look at.
    if (!isAxiosResponse(response)) return response
    const config = response.config as Config
    if (config.reauth === false || config[ATTACHED] === undefined) return response
    return this.respond(config, response) ?? response
  }

  onResponseError(error: unknown): Promise<AxiosResponse> {
    if (!isAxiosError(error) || !error.config || !error.response) return Promise.reject(error)
    return this.respond(error.config as Config, error.response, error) ?? Promise.reject(error)
  }

  /**
   * The replay runs the instance's whole response chain, then its result continues through
   * the interceptors registered after reauth's: those run twice on a replayed response.
   */
  warnIfNotLast(): void {
    const handlers = this.instance.interceptors.response.handlers ?? []
    if (this.#warned || !handlers.slice(this.responseId + 1).some(Boolean)) return
    this.#warned = true
    this.reauth.log.warn(
      'Response interceptors registered after attachReauth() run twice on a replayed response: ' +
        'call attachReauth() after adding your own interceptors',
    )
  }
}

/**
 * Keep an existing axios instance authorised: adds a request interceptor that attaches
 * the token and a response interceptor that, on an auth failure, refreshes once for all
 * concurrent callers (single flight) and replays the request through the same instance.
 * Several instances may share one engine, and so one refresh. Returns a function that
 * removes both interceptors.
 *
 * The token goes only to the `baseURL` origin (or `options.origins`); a request that sets
 * its own `Authorization`, or passes `reauth: false`, is left alone.
 *
 * @example
 * import axios from 'axios'
 * import { createEngine } from '@reauth/core'
 * import { attachReauth } from '@reauth/axios'
 *
 * const api = axios.create({ baseURL: 'https://api.example.com' })
 * const engine = createEngine({ tokens, refresh })
 * const detach = attachReauth(api, engine)
 * const { data } = await api.get('/me')
 */
export function attachReauth(
  instance: AxiosInstance,
  engine: Engine,
  options: AttachReauthOptions = {},
): DetachReauth {
  if (
    (typeof instance !== 'function' && (typeof instance !== 'object' || instance === null)) ||
    typeof instance.interceptors?.request?.use !== 'function' ||
    typeof instance.interceptors?.response?.use !== 'function' ||
    typeof instance.request !== 'function' ||
    typeof instance.getUri !== 'function'
  ) {
    throw new ReauthOptionsError('"instance" must be an axios instance')
  }
  if (typeof options !== 'object' || options === null) {
    throw new ReauthOptionsError('"options" must be an object')
  }
  // Explicit lists win (the adapter's, then the engine's); the baseURL origin is the default.
  const reauth = connect(engine, {
    origins: options.origins,
    base: baseOrigin(instance.defaults?.baseURL),
    baseHint: 'the instance an absolute "baseURL"',
  })

  const steps = new Interceptors(reauth, instance)
  // Two request interceptors, one of which runs for each request (`runWhen`): a synchronous
  // one when the request is authorised at once, so axios sends it in the same turn (as it
  // does with no interceptors); the other when it may wait.
  const requestId = instance.interceptors.request.use(
    (config) => steps.onRequestNow(config),
    rethrow,
    { synchronous: true, runWhen: (config) => steps.goesNow(config) },
  )
  const waitingId = instance.interceptors.request.use((config) => steps.onRequest(config), null, {
    runWhen: (config) => !steps.wentNow(config),
  })
  steps.requestId = requestId
  const responseId = instance.interceptors.response.use(
    (response) => steps.onResponse(response),
    (error: unknown) => steps.onResponseError(error),
  )
  steps.responseId = responseId
  const unpark = parkCalls(instance, reauth, {
    url: fullUrl,
    // Without reauth's own interceptors, or with one that runs first, nothing is parked.
    interceptedBefore: (config) => steps.interceptedBefore(config),
  })
  let attached = true
  return function detach() {
    if (!attached) return
    attached = false
    unpark()
    instance.interceptors.request.eject(requestId)
    instance.interceptors.request.eject(waitingId)
    instance.interceptors.response.eject(responseId)
  }
}
