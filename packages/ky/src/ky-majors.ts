/**
 * What differs between ky 1 and ky 2, in one place: how hooks are called, where the caller's
 * own options survive, and how a thrown hook error is retried.
 */

import type { Pass } from '@reauth/core/adapter'

/** The parts of ky's options the hooks read; ky adds them to `context` or hands them over. */
export interface HookOptions {
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
  /** When the call's timeout runs out (ms since the epoch), for a call that was parked first. */
  deadline?: number | undefined
  /** What the engine's `hold` resolved with, for a call that was parked first. */
  pass?: Pass | undefined
  timeout?: number | false | undefined
  fetch?: unknown
}

/** `context` key of the caller's own options. A symbol: never sent, never in JSON. */
export const CALLER = Symbol('reauth.caller')

export const isObject = (value: unknown): value is Record<PropertyKey, unknown> =>
  typeof value === 'object' && value !== null

const isRequest = (value: unknown): value is Request =>
  value instanceof Request || Object.prototype.toString.call(value) === '[object Request]'

/** A hook's arguments, whichever major called it. */
export interface HookArgs {
  request: Request
  options: HookOptions
  response: Response | undefined
  /** ky 1 (positional arguments) rather than ky 2 (one state object). */
  legacy: boolean
}

/** ky 1 calls hooks with `(request, options, response?)`, ky 2 with `({ request, options, response })`. */
export function hookArgs(first: unknown, second: unknown, third: unknown): HookArgs | undefined {
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
export function endLegacyRetries(legacy: boolean, retry: unknown): void {
  if (legacy && isObject(retry) && !Object.isFrozen(retry)) retry.limit = 0
}

/** The caller's own options, as {@link rememberCaller} (ky 2) or `withReauth` (ky 1) kept them. */
export function callerOf(options: HookOptions): CallerOptions {
  const caller = options.context?.[CALLER]
  return isObject(caller) ? (caller as CallerOptions) : {}
}

/**
 * ky 2's `init` hook: ky 2 merged the instance's options with the caller's, and later hooks
 * see only derived values — keep the caller's own `signal`, `timeout` and `fetch` in
 * `context`. ky 1 has no `init` hook (`withReauth` keeps the signal instead).
 */
export function rememberCaller(raw: unknown): void {
  if (!isObject(raw)) return
  const call = raw as HookOptions
  const caller: CallerOptions = {
    ...callerOf(call),
    ...(call.signal ? { signal: call.signal } : {}),
    ...(call.timeout === undefined ? {} : { timeout: call.timeout }),
    ...(call.fetch === undefined ? {} : { fetch: call.fetch }),
  }
  call.context = { ...call.context, [CALLER]: caller }
}
