import { type Engine, type OriginPolicy, ReauthOptionsError } from '@reauth/core'
import {
  type Connection,
  type Credentials,
  connect,
  type DeadlineSignal,
  deadlineSignal,
  LATER,
  unreplayableBody,
} from '@reauth/core/adapter'
import {
  CALLER,
  type CallerOptions,
  callerOf,
  endLegacyRetries,
  type HookArgs,
  type HookOptions,
  hookArgs,
  rememberCaller,
} from './ky-majors.js'

export { CALLER, type CallerOptions }

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

/** `context` key marking a replay: the hooks leave it alone, so it is never replayed again. */
const REPLAY = Symbol('reauth.replay')

/** One ky call, from its first attempt to its last ky retry. */
interface CallState {
  /** What reauth set on the latest attempt; `undefined` when it set nothing. */
  sent: Credentials | undefined
  /** What reauth set before a replay: a ky retry's copy of the request may still carry it. */
  stale: Credentials | undefined
  /** A clone of the request taken before the first send, for the replay. */
  spare: Request | undefined
  /** Why the request cannot be replayed. */
  unreplayable: string | undefined
  replayed: boolean
  /**
   * ky's timer for the current attempt started after the call's deadline did: the call waited
   * before its first send, was parked, or this is one of ky's retries. A wait after a 401 then
   * ends on the deadline, not only on ky's timer.
   */
  deadlineFirst: boolean
  /** ky 1 (hooks called with positional arguments), which runs `beforeRequest` again on a retry. */
  legacy: boolean
  /** The call's retry options (ky 1 ends its retries after a reauth failure). */
  retry: unknown
  /** When the call's `timeout` runs out (ms since the epoch): it bounds the whole call, waits included. */
  deadline?: number | undefined
}

/** ky's own timeout error, as `isTimeoutError` of ky 1 and ky 2 recognise it (by name). */
export function timeoutError(request: Request): Error {
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
  request: Request,
  own: AbortSignal | null | undefined,
): DeadlineSignal {
  return deadlineSignal(state.deadline, own, () => timeoutError(request))
}

/** The call's deadline, from its first send (a call parked before ky built it: from when it was made). */
function startDeadline(
  state: CallState,
  timeout: number | false | undefined,
  deadline: number | undefined,
): void {
  if (state.deadline !== undefined) return
  if (deadline !== undefined) state.deadline = deadline
  else if (typeof timeout === 'number' && timeout > 0) state.deadline = Date.now() + timeout
}

/** Options of the internal factory shared by {@link reauthHooks} and {@link withReauth}. */
export interface CreateHooksOptions {
  /** The bare ky function replays go through (`afterResponse`). */
  replayKy: KyFunction
}

/** ky's `beforeRetry` hook (both majors call it with `({ request, options, error, retryCount })`). */
export type ReauthBeforeRetryHook = (state: unknown) => Promise<void>

/** ky's `fetch` option. */
export type Fetch = (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>

/** What {@link withReauth} extends an instance with: reauth sees responses in ky's `fetch`. */
export interface FetchLevelHooks {
  hooks: {
    init: ReauthInitHook[]
    beforeRequest: ReauthBeforeRequestHook[]
    beforeRetry: ReauthBeforeRetryHook[]
  }
  /**
   * ky's `fetch` option with reauth's response side in it. `undefined`: the global `fetch`,
   * looked up at each call (as test doubles that patch it expect).
   */
  wrap(fetch: unknown): Fetch
  /** For a call whose requests the `fetch` may not know (see {@link createFetchLevel}). */
  afterResponse: ReauthAfterResponseHook
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

const DONE: Promise<undefined> = Promise.resolve(undefined)
const noop = () => {}

/**
 * Read a 401's body to its end before the wait. ky hands `afterResponse` a clone (a tee of the
 * body) and keeps its own: reading one branch ends the fetch behind both, which then holds no
 * connection state while the request waits, and ky's branch keeps the few bytes read. Not
 * cancelled: cancelling the clone ends in an unhandled rejection inside ky when the caller then
 * aborts (seen in test/runtimes).
 */
function drain(response: Response): void {
  if (response.body === null || response.bodyUsed) return
  response.arrayBuffer().then(undefined, () => undefined)
}

/** Set the headers reauth computed for a send. */
function setCredentials(headers: Headers, sent: Credentials): void {
  for (const [name, value] of Object.entries(sent.headers)) headers.set(name, value)
}

/** A response that will not reach ky: release its body (reauth owns it: ky has not seen it). */
function discard(response: Response): void {
  response.body?.cancel().catch(() => undefined)
}

/**
 * Both ways reauth sees a ky call's responses, over a connection whose origin policy was
 * fixed when it was made (never taken from a call, whose own `prefixUrl` / `prefix` /
 * `baseUrl` could name any origin):
 * - `afterResponse` ({@link reauthHooks}): ky hands the hook a clone of every response (a tee
 *   of its body) and keeps its own; the replay goes through `replayKy`.
 * - ky's `fetch` ({@link withReauth}): reauth sees the response before ky does, releases a
 *   401's body before the wait, and sends the replay with the same `fetch` inside the same
 *   attempt, so ky clones nothing and its own `timeout` bounds the wait and the replay.
 */
function createCalls(reauth: Connection) {
  const calls = new WeakMap<object, CallState>()
  /** The request each attempt sends, as `beforeRequest` / `beforeRetry` saw it (fetch level). */
  const sending = new WeakMap<Request, CallState>()
  /** The key of a call's state: its `context`, one fresh object per call in both majors. */
  function keyOf(call: HookOptions): object | undefined {
    return call.context ?? call.signal ?? undefined
  }
  function stateOf(call: HookOptions): CallState | undefined {
    const key = keyOf(call)
    return key && calls.get(key)
  }
  /**
   * Take the headers reauth set off a request ky copied (a retry: those of the last attempt,
   * or of the one before a replay), so the current ones go. Returns the `Authorization` left.
   */
  function unset(headers: Headers, state: CallState): string | null {
    const authorization = headers.get('authorization')
    if (authorization === null) return null
    const set =
      state.sent?.headers.authorization === authorization
        ? state.sent
        : state.stale?.headers.authorization === authorization
          ? state.stale
          : undefined
    if (set === undefined) return authorization
    for (const name of Object.keys(set.headers)) headers.delete(name)
    return null
  }

  /** Chains, not async functions: a request waiting for a refresh holds no suspended frame. */
  function beforeRequest(args: HookArgs, register: boolean): Promise<void> {
    const { request, options: call } = args
    if (call.context?.[REPLAY]) return DONE
    const key = keyOf(call)
    let state = key && calls.get(key)
    // A call's first attempt; a retry is sent with the current token, never a parked call's pass.
    const first = !state
    if (!state) {
      state = {
        sent: undefined,
        stale: undefined,
        spare: undefined,
        unreplayable: undefined,
        replayed: false,
        deadlineFirst: false,
        legacy: args.legacy,
        retry: call.retry,
      }
      if (key) calls.set(key, state)
    }
    // ky 1 runs beforeRequest again for its own retries (ky 2 beforeRetry), on a copy that
    // carries our headers.
    const authorization = unset(request.headers, state)
    const caller = callerOf(call)
    // The caller's own signal (ky combines it with its own): it is how the engine
    // recognises its refresh function's own requests.
    const own = caller.signal ?? call.signal ?? request.signal
    const held = state
    // The call's deadline starts now; its timer only if the request really waits.
    startDeadline(held, caller.timeout ?? call.timeout, caller.deadline)
    // A call parked before ky built it waited before ky's timer started; a retry's timer is new.
    if (caller.deadline !== undefined || !first) held.deadlineFirst = true
    const pass = first ? caller.pass : undefined
    const described = {
      url: request.url,
      method: request.method,
      skip: call.context?.reauth === false,
      hasAuthorization: authorization !== null || request.headers.has('dpop'),
      signal: own,
    }
    const sent = (attached: Credentials | undefined): void => {
      held.sent = attached
      held.spare = undefined
      held.unreplayable = undefined
      if (attached === undefined) return
      setCredentials(request.headers, attached)
      if (register) sending.set(request, held)
      if (request.body) {
        // The send consumes the request's body: keep a clone for the replay. A stream the
        // caller gave is read once, and teeing it would buffer an upload of any size.
        held.unreplayable = unreplayableBody(call.body)
        if (held.unreplayable === undefined) held.spare = request.clone()
      }
    }
    // The common case (a valid token in a synchronous store): no promise chain, no wait.
    const now = reauth.ready(described, pass)
    if (now !== LATER) {
      sent(now)
      return DONE
    }
    let wait: DeadlineSignal | undefined
    return reauth
      .attach(described, {
        signal: () => {
          held.deadlineFirst = true
          wait = waitSignal(held, request, own)
          return wait.signal
        },
        pass,
      })
      .then(
        (attached) => {
          wait?.done()
          sent(attached)
        },
        (error: unknown) => {
          wait?.done()
          endLegacyRetries(held.legacy, held.retry)
          throw error
        },
      )
  }

  /**
   * The response side for one attempt: `undefined` to hand the response on, else the replay's.
   * `replay(request)` sends the copy made for it; `release` lets go of the failed response.
   */
  function recover(
    state: CallState,
    request: Request,
    response: Response,
    own: AbortSignal | null | undefined,
    /** Called inside ky's `fetch` (ky's timer for the attempt runs), not in a hook after it. */
    inAttempt: boolean,
    release: (response: Response) => void,
    replay: (again: Request, signal: AbortSignal | null | undefined) => Promise<Response>,
  ): Promise<Response> | undefined {
    if (state.sent === undefined || state.replayed) return undefined
    let replayed: Promise<Response> | undefined
    let wait: DeadlineSignal | undefined
    try {
      // Described (and the deadline's timer started) only for a response reauth recovers from.
      replayed = reauth.respond<Response>(state.sent, response, () => {
        // In ky's fetch, ky's timer for this attempt is running: it bounds the wait, unless the
        // call's deadline comes first (see `deadlineFirst`).
        wait =
          inAttempt && !state.deadlineFirst
            ? { signal: own, done: noop }
            : waitSignal(state, request, own)
        const signal = wait.signal
        return {
          response,
          method: request.method,
          url: request.url,
          unreplayable: state.unreplayable,
          signal,
          errorContext: { request, response },
          release: () => release(response),
          inspect: (outcome) => (outcome.ok ? outcome.value : undefined),
          resend(next) {
            state.replayed = true
            state.stale = state.sent
            state.sent = next
            // ky's own retries of this call (after a 5xx replay, say) go with the new headers.
            setCredentials(request.headers, next)
            // A copy each time: a DPoP nonce retry may resend more than once. The request sent
            // first has no body left to copy: the spare, taken before the send, has it.
            const again = (state.spare ?? request).clone()
            setCredentials(again.headers, next)
            return replay(again, signal)
          },
        }
      })
    } catch (error) {
      wait?.done()
      endLegacyRetries(state.legacy, state.retry)
      throw error
    }
    const deadline = wait
    if (replayed === undefined) {
      deadline?.done()
      return undefined
    }
    return replayed.then(
      (response) => {
        deadline?.done()
        return response
      },
      (error: unknown) => {
        deadline?.done()
        endLegacyRetries(state.legacy, state.retry)
        throw error
      },
    )
  }

  return { stateOf, sending, beforeRequest, recover }
}

/** ky 2's `beforeRequest` runs once per call; its retries send a copy made before the send. */
function beforeRequestHook(
  calls: ReturnType<typeof createCalls>,
  register: boolean,
): ReauthBeforeRequestHook {
  return (first, second) => {
    const args = hookArgs(first, second, undefined)
    return args ? calls.beforeRequest(args, register) : DONE
  }
}

/** The hooks of {@link reauthHooks}: reauth sees each response in `afterResponse`. */
export function createHooks(reauth: Connection, options: CreateHooksOptions): ReauthHooks {
  const { replayKy } = options
  const calls = createCalls(reauth)
  return {
    init: [rememberCaller],
    beforeRequest: [beforeRequestHook(calls, false)],
    afterResponse: [afterResponseHook(calls, replayKy)],
  }
}

function afterResponseHook(
  calls: ReturnType<typeof createCalls>,
  replayKy: KyFunction,
): ReauthAfterResponseHook {
  return (first, second, third) => {
    const args = hookArgs(first, second, third)
    if (!args?.response) return DONE
    const { request, options: call, response } = args
    if (call.context?.[REPLAY]) return DONE
    const state = calls.stateOf(call)
    if (!state) return DONE
    const caller = callerOf(call)
    const own = caller.signal ?? call.signal ?? request.signal
    startDeadline(state, caller.timeout ?? call.timeout, caller.deadline)
    const fetch = caller.fetch ?? call.fetch
    const replayed = calls.recover(state, request, response, own, false, drain, (again) => {
      // One timeout for the whole call: the replay gets what is left when it starts.
      const timeout =
        state.deadline === undefined
          ? (caller.timeout ?? call.timeout)
          : Math.max(1, state.deadline - Date.now())
      // One more attempt of the same call: ky applies its timeout and fetch to it; this
      // call's own throwHttpErrors, retry budget and later hooks then apply to the response.
      return replayKy(again, {
        // The headers again, as ky sets them one by one: MSW's interceptors (which record
        // headers as they are set) would otherwise drop those of a cloned request.
        headers: [...again.headers],
        retry: 0,
        throwHttpErrors: false,
        context: { ...call.context, [REPLAY]: true },
        ...(timeout === undefined ? {} : { timeout }),
        ...(fetch === undefined ? {} : { fetch }),
        ...(caller.signal ? { signal: caller.signal } : {}),
      })
    })
    return replayed ?? DONE
  }
}

/**
 * The hooks and `fetch` of {@link withReauth}: `beforeRequest` (and ky 2's `beforeRetry`)
 * attach the token and note the request each attempt sends; the wrapped `fetch` sees the
 * response first. A request ky sends that no hook of reauth's saw — swapped by a hook that
 * runs after reauth's, wrapped by ky 2 for `onUploadProgress`, rebuilt by ky 2 for a retry
 * after a timeout — is not known to the `fetch`: `withReauth` gives such calls `afterResponse`.
 */
export function createFetchLevel(reauth: Connection, replayKy: KyFunction): FetchLevelHooks {
  const calls = createCalls(reauth)
  const afterResponse = afterResponseHook(calls, replayKy)
  const beforeRequest = beforeRequestHook(calls, true)
  function beforeRetry(first: unknown): Promise<void> {
    const args = hookArgs(first, undefined, undefined)
    const state = args && calls.stateOf(args.options)
    // ky 1 runs beforeRequest again on a retry; ky 2 does not.
    if (!args || !state || state.legacy) return DONE
    return calls.beforeRequest(args, true)
  }
  /** This level's own wrappers: another `withReauth` over the same instance wraps them again. */
  const ours = new WeakSet<object>()
  const wrapped = new WeakMap<object, Fetch>()
  let global: Fetch | undefined
  function wrap(inner: unknown): Fetch {
    if (typeof inner === 'function') {
      if (ours.has(inner)) return inner as Fetch
      let done = wrapped.get(inner)
      if (!done) {
        done = over(inner as Fetch)
        wrapped.set(inner, done)
      }
      return done
    }
    global ??= over(undefined)
    return global
  }
  function over(inner: Fetch | undefined): Fetch {
    // A declaration, so profiles name it (bench/src/profile.ts: where reauth hands the call on).
    function reauthKyFetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
      const send = inner ?? (globalThis.fetch as Fetch)
      const pending = send(input, init)
      const state = input instanceof Request ? calls.sending.get(input) : undefined
      if (state === undefined) return pending
      const request = input as Request
      return pending.then(
        (response) =>
          calls.recover(state, request, response, request.signal, true, discard, (again, signal) =>
            send(
              signal && signal !== request.signal ? new Request(again, { signal }) : again,
              init,
            ),
          ) ?? response,
      )
    }
    ours.add(reauthKyFetch)
    return reauthKyFetch
  }
  return {
    hooks: { init: [rememberCaller], beforeRequest: [beforeRequest], beforeRetry: [beforeRetry] },
    wrap,
    afterResponse,
  }
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
  // The hooks cannot see the instance they are given to, and a call's own prefix may name
  // any origin: the origins are the caller's or the engine's, never a call's.
  const reauth = connect(engine, {
    origins: options.origins,
    baseHint:
      'use withReauth(instance, engine), which defaults to the instance’s prefixUrl / prefix / baseUrl origin',
  })
  return createHooks(reauth, { replayKy: ky.create({}) })
}
