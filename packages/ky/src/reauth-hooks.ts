import {
  adapterOrigins,
  type DeadlineSignal,
  deadlineSignal,
  type Engine,
  errorForRequest,
  type OriginMatcher,
  type OriginPolicy,
  ReauthOptionsError,
  unreplayableBody,
} from '@reauth/core'

/**
 * A ky function or instance, ky 1 or ky 2. reauth calls its `create` (for replays) and its
 * `extend` (in {@link withReauth}); its own types stay those of the ky you installed.
 */
export interface KyLike {
  create: (...args: never[]) => unknown
  extend: (...args: never[]) => unknown
}

/** Options of {@link reauthHooks} and {@link withReauth}. */
export interface ReauthKyOptions {
  /**
   * Origins that receive the token. Default: the engine's `origins`, else the origin of the
   * instance's `prefixUrl` (ky 1) or `prefix` / `baseUrl` (ky 2). Required when there is none.
   */
  origins?: OriginPolicy
}

/**
 * What reauth reads in ky's `context` option. `context: { reauth: false }` sends one
 * request untouched: no token, no refresh, no replay.
 *
 * @example
 * await api.get('https://api.example.com/health', { context: { reauth: false } })
 */
export interface ReauthContext {
  /** `false`: send this request untouched (no token, no refresh, no replay). */
  reauth?: boolean
}

/**
 * ky 2's `init` hook: remembers the caller's own `signal`, `timeout` and `fetch` for the
 * request and its replay (ky 2 hands later hooks only derived values). ky 1 ignores it.
 */
export type ReauthInitHook = (options: unknown) => void
/** A `beforeRequest` hook for both majors: ky 1 calls it with `(request, options, state)`, ky 2 with `({request, options})`. */
export type ReauthBeforeRequestHook = (
  first: unknown,
  options?: unknown,
  state?: unknown,
) => Promise<void>
/** An `afterResponse` hook for both majors: ky 1 calls it with `(request, options, response, state)`, ky 2 with `({request, options, response})`. */
export type ReauthAfterResponseHook = (
  first: unknown,
  options?: unknown,
  response?: unknown,
  state?: unknown,
) => Promise<Response | undefined>

/** The hooks returned by {@link reauthHooks}, for `ky.extend({ hooks })` / `ky.create({ hooks })`. */
export interface ReauthHooks {
  init: ReauthInitHook[]
  beforeRequest: ReauthBeforeRequestHook[]
  afterResponse: ReauthAfterResponseHook[]
}

/** A ky function as the hooks call it (both majors fit). */
export type KyFunction = ((input: Request, options?: object) => Promise<Response>) & {
  create(options?: object): KyFunction
  extend(options: object | ((parent: Record<string, unknown>) => object)): KyFunction
}

/** The parts of ky's options the hooks read; ky adds them to `context` or hands them over. */
interface HookOptions {
  context?: Record<PropertyKey, unknown>
  signal?: AbortSignal | null
  body?: unknown
  timeout?: number | false
  fetch?: unknown
  retry?: unknown
  prefixUrl?: unknown
  prefix?: unknown
  baseUrl?: unknown
}

/** What a call's caller gave, kept in `context` (ky derives new values before later hooks run). */
export interface CallerOptions {
  signal?: AbortSignal | null | undefined
  timeout?: number | false | undefined
  fetch?: unknown
}

/** `context` key of the caller's own options. A symbol: never sent, never in JSON. */
export const CALLER = Symbol('reauth.caller')
/** `context` key marking a replay: the hooks leave it alone, so it is never replayed again. */
const REPLAY = Symbol('reauth.replay')

/** One ky call, from its first attempt to its last ky retry. */
interface CallState {
  /** The `Authorization` value reauth set on the latest attempt; `undefined` when it set none. */
  header: string | undefined
  /** A clone of the request taken before the first send, for the replay. */
  spare: Request | undefined
  /** Why the request cannot be replayed. */
  unreplayable: string | undefined
  replayed: boolean
  /** When the call's `timeout` runs out (ms since the epoch): it bounds the whole call, waits included. */
  deadline?: number | undefined
}

/** ky's own timeout error, as `isTimeoutError` of ky 1 and ky 2 recognise it (by name). */
function timeoutError(request: Request): Error {
  const error = new Error(`Request timed out: ${request.method} ${request.url}`)
  error.name = 'TimeoutError'
  Object.defineProperty(error, 'request', { value: request, enumerable: true })
  return error
}

/**
 * The signal a wait on the refresh ends on: the caller's own and the call's deadline (its
 * `timeout`, counted from the first send), which rejects with ky's usual `TimeoutError`.
 */
function waitSignal(
  state: CallState,
  timeout: number | false | undefined,
  request: Request,
  own: AbortSignal | null | undefined,
): DeadlineSignal {
  if (state.deadline === undefined && typeof timeout === 'number' && timeout > 0) {
    state.deadline = Date.now() + timeout
  }
  return deadlineSignal(state.deadline, own, () => timeoutError(request))
}

const isObject = (value: unknown): value is Record<PropertyKey, unknown> =>
  typeof value === 'object' && value !== null

const isRequest = (value: unknown): value is Request =>
  value instanceof Request || Object.prototype.toString.call(value) === '[object Request]'

interface HookArgs {
  request: Request
  options: HookOptions
  response: Response | undefined
  /** ky 1 (positional arguments) rather than ky 2 (one state object). */
  legacy: boolean
}

function hookArgs(first: unknown, second: unknown, third: unknown): HookArgs | undefined {
  if (isRequest(first)) {
    return {
      request: first,
      options: isObject(second) ? (second as HookOptions) : {},
      response: third instanceof Response ? third : undefined,
      legacy: true,
    }
  }
  if (isObject(first) && isRequest(first.request)) {
    return {
      request: first.request,
      options: isObject(first.options) ? (first.options as HookOptions) : {},
      response: first.response instanceof Response ? first.response : undefined,
      legacy: false,
    }
  }
  return undefined
}

/**
 * ky 1 retries any error a hook throws (ky 2 treats them as final). A reauth failure is the
 * call's outcome, not a network blip: end ky's retries for this call (its retry options are
 * a fresh object per call) so the caller gets it at once, and no retry starts another grant.
 */
function endLegacyRetries(args: HookArgs): void {
  const retry = args.options.retry
  if (args.legacy && isObject(retry) && !Object.isFrozen(retry)) retry.limit = 0
}

function callerOf(options: HookOptions): CallerOptions {
  const caller = options.context?.[CALLER]
  return isObject(caller) ? (caller as CallerOptions) : {}
}

/** Options of the internal factory shared by {@link reauthHooks} and {@link withReauth}. */
export interface CreateHooksOptions {
  /** The bare ky function replays go through. */
  replayKy: KyFunction
  /**
   * The origin policy, fixed when the hooks are made: never taken from a call, whose own
   * `prefixUrl` / `prefix` / `baseUrl` could name any origin.
   */
  allowed: OriginMatcher
}

export function validateEngine(engine: Engine): void {
  if (
    typeof engine !== 'object' ||
    engine === null ||
    typeof engine.authorize !== 'function' ||
    typeof engine.recover !== 'function'
  ) {
    throw new ReauthOptionsError('"engine" must be an engine from createEngine()')
  }
}

export function validateKy(ky: unknown): asserts ky is KyFunction {
  if (
    typeof ky !== 'function' ||
    typeof (ky as Partial<KyLike>).create !== 'function' ||
    typeof (ky as Partial<KyLike>).extend !== 'function'
  ) {
    throw new ReauthOptionsError('"ky" must be ky or a ky instance (from ky.create / ky.extend)')
  }
}

export function createHooks(engine: Engine, options: CreateHooksOptions): ReauthHooks {
  const { replayKy } = options
  const calls = new WeakMap<object, CallState>()
  /** The key of a call's state: its `context`, one fresh object per call in both majors. */
  function keyOf(call: HookOptions): object | undefined {
    return call.context ?? call.signal ?? undefined
  }

  function init(raw: unknown): void {
    if (!isObject(raw)) return
    const call = raw as HookOptions
    // ky 2 merged the instance's options with the caller's; later hooks only see derived ones.
    const caller: CallerOptions = {
      ...callerOf(call),
      ...(call.signal ? { signal: call.signal } : {}),
      ...(call.timeout === undefined ? {} : { timeout: call.timeout }),
      ...(call.fetch === undefined ? {} : { fetch: call.fetch }),
    }
    call.context = { ...call.context, [CALLER]: caller }
  }

  async function beforeRequest(first: unknown, second?: unknown): Promise<void> {
    const args = hookArgs(first, second, undefined)
    if (!args) return
    const { request, options: call } = args
    if (call.context?.[REPLAY]) return
    const key = keyOf(call)
    let state = key && calls.get(key)
    if (!state) {
      state = { header: undefined, spare: undefined, unreplayable: undefined, replayed: false }
      if (key) calls.set(key, state)
    }
    // ky 1 runs beforeRequest again for its own retries, on a copy that carries our header.
    if (state.header !== undefined && request.headers.get('authorization') === state.header) {
      request.headers.delete('authorization')
    }
    const skip = call.context?.reauth === false
    const hasAuthorization = request.headers.has('authorization')
    // The caller's own signal (ky combines it with its own): it is how the engine
    // recognises its refresh function's own requests.
    const own = callerOf(call).signal ?? call.signal ?? request.signal
    const wait = waitSignal(state, callerOf(call).timeout ?? call.timeout, request, own)
    let header: string | undefined
    try {
      header = await engine.authorize(
        {
          url: request.url,
          skip,
          hasAuthorization,
          allowed: skip || hasAuthorization ? undefined : options.allowed,
          signal: own,
        },
        { signal: wait.signal },
      )
    } catch (error) {
      endLegacyRetries(args)
      throw error
    } finally {
      wait.done()
    }
    state.header = header
    state.spare = undefined
    state.unreplayable = undefined
    if (header === undefined) return
    request.headers.set('authorization', header)
    if (request.body) {
      // ky may hand afterResponse a request whose body the send consumed: keep a clone. A
      // stream the caller gave is read once, and teeing it would buffer an upload of any size.
      state.unreplayable = unreplayableBody(call.body)
      if (state.unreplayable === undefined) state.spare = request.clone()
    }
  }

  async function afterResponse(
    first: unknown,
    second?: unknown,
    third?: unknown,
  ): Promise<Response | undefined> {
    const args = hookArgs(first, second, third)
    if (!args?.response) return undefined
    const { request, options: call, response } = args
    if (call.context?.[REPLAY]) return undefined
    const key = keyOf(call)
    const state = key && calls.get(key)
    if (!state || state.header === undefined || state.replayed) return undefined
    if (!engine.isAuthError(response)) return undefined
    if (state.unreplayable !== undefined) {
      engine.notReplayable(request, state.unreplayable)
      return undefined
    }
    state.replayed = true
    const caller = callerOf(call)
    const own = caller.signal ?? call.signal ?? request.signal
    const wait = waitSignal(state, caller.timeout ?? call.timeout, request, own)
    const { signal } = wait
    let next: string
    try {
      next = await engine.recover(state.header, { signal })
    } catch (error) {
      wait.done()
      endLegacyRetries(args)
      // Waiters share one failure object: each caller gets its own copy, with its response.
      throw errorForRequest(error, { request, response })
    }
    state.header = next
    // ky's own retries of this call (after a 5xx replay, say) go with the new token.
    request.headers.set('authorization', next)
    const replay = state.spare ?? request.clone()
    state.spare = undefined
    replay.headers.set('authorization', next)
    const fetch = caller.fetch ?? call.fetch
    // One more attempt of the same call: ky applies its timeout and fetch to it; this call's
    // own throwHttpErrors, retry budget and later hooks then apply to the response we return.
    return engine
      .replay(
        () => {
          // One timeout for the whole call: the replay gets what is left when it starts.
          const timeout =
            state.deadline === undefined
              ? (caller.timeout ?? call.timeout)
              : Math.max(1, state.deadline - Date.now())
          return replayKy(replay, {
            // The headers again, as ky sets them one by one: MSW's interceptors (which record
            // headers as they are set) would otherwise drop those of a cloned request.
            headers: [...replay.headers],
            retry: 0,
            throwHttpErrors: false,
            context: { ...call.context, [REPLAY]: true },
            ...(timeout === undefined ? {} : { timeout }),
            ...(fetch === undefined ? {} : { fetch }),
            ...(caller.signal ? { signal: caller.signal } : {}),
          })
        },
        { signal },
      )
      .finally(() => wait.done())
  }

  return { init: [init], beforeRequest: [beforeRequest], afterResponse: [afterResponse] }
}

/**
 * ky hooks over an engine, for `ky.create({ hooks })` or `ky.extend({ hooks })`: `beforeRequest`
 * attaches the token (allowed origins only), `afterResponse` refreshes once for all concurrent
 * 401s and replays the request, body byte-identical, through `ky` (give the ky you use; a
 * replay is one more attempt of the same call, so its timeout, `throwHttpErrors`, retry budget
 * and later hooks apply). Works with ky 1 and ky 2. {@link withReauth} is the one-call form; on
 * ky 1 only it recognises a refresh function's own requests by their `signal`.
 *
 * @example
 * import ky from 'ky'
 * import { reauthHooks } from '@reauth/ky'
 *
 * const api = ky.create({
 *   prefixUrl: 'https://api.example.com',
 *   hooks: reauthHooks(ky, engine),
 * })
 * const me = await api.get('me').json()
 */
export function reauthHooks(
  ky: KyLike,
  engine: Engine,
  options: ReauthKyOptions = {},
): ReauthHooks {
  validateKy(ky)
  validateEngine(engine)
  return createHooks(engine, {
    replayKy: ky.create({}),
    // The hooks cannot see the instance they are given to, and a call's own prefix may name
    // any origin: the origins are the caller's or the engine's, never a call's.
    allowed: adapterOrigins(
      engine,
      options.origins,
      undefined,
      'use withReauth(instance, engine), which defaults to the instance’s prefixUrl / prefix / baseUrl origin',
    ),
  })
}
