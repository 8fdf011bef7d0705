import {
  isRefreshError,
  isSessionExpiredError,
  RefreshError,
  SessionExpiredError,
} from './errors.js'

/** RFC 6749 §5.2 errors that end the session: no later refresh with this grant can work. */
export const TERMINAL_OAUTH_ERRORS: ReadonlySet<string> = new Set([
  'invalid_grant',
  'invalid_client',
  'unauthorized_client',
])

/**
 * The longest `Retry-After` the engine honours: one hour. A longer (or absurd) value from a
 * token endpoint, or a proxy in front of it, would turn refreshing off for good.
 */
export const MAX_RETRY_AFTER_MS = 3_600_000

/**
 * Parse a `Retry-After` value (delay-seconds or an HTTP date) into milliseconds from `now`,
 * capped at {@link MAX_RETRY_AFTER_MS}. Non-finite, negative or unparseable values are ignored.
 *
 * @example
 * parseRetryAfter('2', Date.now()) // 2000
 */
export function parseRetryAfter(value: unknown, now: number): number | undefined {
  let ms: number | undefined
  if (typeof value === 'number') ms = value
  else if (typeof value === 'string' && value.trim() !== '') {
    const trimmed = value.trim()
    if (/^\d+$/.test(trimmed)) ms = Number(trimmed) * 1000
    else {
      const date = Date.parse(trimmed)
      if (!Number.isNaN(date)) ms = Math.max(0, date - now)
    }
  }
  if (ms === undefined || !Number.isFinite(ms) || ms < 0) return undefined
  return Math.min(ms, MAX_RETRY_AFTER_MS)
}

interface ErrorLike {
  name?: unknown
  message?: unknown
  error?: unknown
  error_description?: unknown
  errorDescription?: unknown
  status?: unknown
  retryAfter?: unknown
  /** ky 2 `HTTPError`: the parsed response body. */
  data?: unknown
  /** axios `AxiosError` (`data`), ky 1 `HTTPError` (a `Response`). */
  response?: {
    status?: unknown
    data?: unknown
    headers?: { get?: (name: string) => unknown } | Record<string, unknown>
  }
}

/** The RFC 6749 §5.2 fields of an error body. */
export interface OAuthErrorBody {
  error: string
  error_description?: string | undefined
}

function stringOrUndefined(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined
}

/** A §5.2 body from a parsed object or a JSON text; `undefined` for anything else. */
function errorBody(value: unknown): OAuthErrorBody | undefined {
  let parsed = value
  if (typeof value === 'string') {
    if (value.length > 65_536) return undefined
    try {
      parsed = JSON.parse(value)
    } catch {
      return undefined
    }
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined
  const { error, error_description } = parsed as Record<string, unknown>
  if (typeof error !== 'string' || error === '') return undefined
  return { error, error_description: stringOrUndefined(error_description) }
}

function isResponse(value: unknown): value is Response {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Response).clone === 'function' &&
    typeof (value as Response).text === 'function' &&
    typeof (value as Response).status === 'number'
  )
}

/**
 * Read the RFC 6749 §5.2 body of whatever a refresh function threw, in the shapes users'
 * clients throw: a fetch `Response`, ky 1's `HTTPError` (its unread `response`), ky 2's
 * (`data`), axios's `AxiosError` (`response.data`). The body is read from a clone, never
 * waited on for more than `timeoutMs` (then cancelled); only a text of at most 64 KiB is parsed.
 *
 * @example
 * const body = await readOAuthErrorBody(kyHttpError) // { error: 'invalid_grant' }
 */
export async function readOAuthErrorBody(
  thrown: unknown,
  timeoutMs = 1_000,
): Promise<OAuthErrorBody | undefined> {
  if (typeof thrown !== 'object' || thrown === null) return undefined
  const like = thrown as ErrorLike
  let timer: unknown
  let clone: Response | undefined
  try {
    const known = safeBody(like)
    if (known) return known
    const response = isResponse(thrown)
      ? thrown
      : isResponse(like.response)
        ? like.response
        : undefined
    if (!response || response.bodyUsed) return undefined
    clone = response.clone()
    const text = await Promise.race([
      clone.text(),
      new Promise<undefined>((resolve) => {
        timer = setTimeout(resolve, timeoutMs)
        ;(timer as { unref?: () => void }).unref?.()
      }),
    ])
    return errorBody(text)
  } catch {
    return undefined
  } finally {
    clearTimeout(timer as Parameters<typeof clearTimeout>[0])
    // A body that did not end in time is not read further.
    clone?.body?.cancel().catch(() => {})
  }
}

/** A §5.2 body already parsed on the error (ky 2's `data`, axios's `response.data`); getters may throw. */
function safeBody(like: ErrorLike): OAuthErrorBody | undefined {
  try {
    return errorBody(like.data) ?? errorBody(like.response?.data)
  } catch {
    return undefined
  }
}

function headerOf(headers: unknown, name: string): unknown {
  if (typeof headers !== 'object' || headers === null) return undefined
  const get = (headers as { get?: unknown }).get
  if (typeof get === 'function') return get.call(headers, name)
  return (headers as Record<string, unknown>)[name]
}

/** Remove every secret from a text; used for messages built from foreign errors. */
export function redact(text: string, secrets: ReadonlyArray<string | undefined>): string {
  let result = text
  for (const secret of secrets) {
    if (secret && secret.length >= 4) result = result.split(secret).join('[redacted]')
  }
  return result
}

const COPIED_FIELDS = ['code', 'status', 'errno', 'syscall', 'error', 'error_description'] as const
const BUILTIN_ERRORS: Record<string, ErrorConstructor> = {
  TypeError,
  RangeError,
  SyntaxError,
  ReferenceError,
  Error,
}

/**
 * A copy of a foreign error (and its `cause` chain) that keeps what explains the failure —
 * name, message, stack, `code`, `status`, the OAuth `error` — and nothing else: a client's
 * error holds the request it sent (axios `config.data`, ky `options.body`: the refresh token)
 * and the response it got (fresh tokens). Known secrets are redacted from the texts.
 *
 * @example
 * new RefreshError('…', { retryable: true }, { cause: scrubError(axiosError, [refreshToken]) })
 */
export function scrubError(
  value: unknown,
  secrets: ReadonlyArray<string | undefined>,
  depth = 0,
): Error {
  const like = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>
  const name = typeof like.name === 'string' ? like.name : isResponse(value) ? 'Response' : 'Error'
  const message =
    typeof like.message === 'string'
      ? redact(like.message, secrets)
      : isResponse(value)
        ? `HTTP ${value.status}`
        : typeof value === 'string'
          ? redact(value, secrets)
          : ''
  const Builtin = BUILTIN_ERRORS[name] ?? Error
  const copy = new Builtin(message)
  if (copy.name !== name)
    Object.defineProperty(copy, 'name', { value: name, configurable: true, writable: true })
  copy.stack = typeof like.stack === 'string' ? redact(like.stack, secrets) : `${name}: ${message}`
  for (const field of COPIED_FIELDS) {
    const fieldValue = like[field]
    if (typeof fieldValue === 'string')
      (copy as unknown as Record<string, unknown>)[field] = redact(fieldValue, secrets)
    else if (typeof fieldValue === 'number')
      (copy as unknown as Record<string, unknown>)[field] = fieldValue
  }
  if (like.cause !== undefined && depth < 4) {
    Object.defineProperty(copy, 'cause', {
      value: scrubError(like.cause, secrets, depth + 1),
      configurable: true,
      writable: true,
    })
  }
  return copy
}

/**
 * Map whatever a `refresh` function threw to the engine's two outcomes: a terminal
 * {@link SessionExpiredError} or a {@link RefreshError}. `secrets` are scrubbed from any
 * message taken from the foreign error; the foreign error is kept as `cause` only as a
 * {@link scrubError} copy. `body` is the §5.2 body read by {@link readOAuthErrorBody}.
 */
export function classifyRefreshFailure(
  thrown: unknown,
  secrets: ReadonlyArray<string | undefined>,
  now: number,
  body?: OAuthErrorBody,
): SessionExpiredError | RefreshError {
  if (isSessionExpiredError(thrown) || isRefreshError(thrown)) {
    // reauth's own error, thrown by the refresh function: its cause is foreign, scrub it.
    if (thrown.cause !== undefined) {
      Object.defineProperty(thrown, 'cause', {
        value: scrubError(thrown.cause, secrets),
        configurable: true,
        writable: true,
      })
    }
    return thrown
  }
  const like = (typeof thrown === 'object' && thrown !== null ? thrown : {}) as ErrorLike
  const status =
    typeof like.status === 'number'
      ? like.status
      : typeof like.response?.status === 'number'
        ? like.response.status
        : undefined
  const retryAfter =
    parseRetryAfter(like.retryAfter, now) ??
    parseRetryAfter(headerOf(like.response?.headers, 'retry-after'), now) ??
    (isResponse(thrown) ? parseRetryAfter(thrown.headers.get('retry-after'), now) : undefined)
  const found = body ?? safeBody(like)
  // Servers echo what they were sent: the code and description are redacted like messages.
  const rawError = stringOrUndefined(like.error) ?? found?.error
  const error = rawError === undefined ? undefined : redact(rawError, secrets)
  const rawDescription =
    stringOrUndefined(like.errorDescription) ??
    stringOrUndefined(like.error_description) ??
    found?.error_description
  const errorDescription =
    rawDescription === undefined ? undefined : redact(rawDescription, secrets)
  const statusText = status === undefined ? '' : ` (HTTP ${status})`
  const cause = scrubError(thrown, secrets)
  if (error !== undefined) {
    const fields = { error, errorDescription, status }
    if (TERMINAL_OAUTH_ERRORS.has(error)) {
      return new SessionExpiredError(
        `The session has expired: the token endpoint answered "${error}"${statusText}`,
        fields,
        { cause },
      )
    }
    const retryable = status === undefined || status >= 500 || status === 429 || status === 408
    return new RefreshError(
      `The refresh failed: the token endpoint answered "${error}"${statusText}`,
      { ...fields, retryable, retryAfter },
      { cause },
    )
  }
  if (status !== undefined) {
    // A 4xx without a §5.2 code cannot succeed when repeated (408 and 429 can).
    const retryable = status >= 500 || status === 408 || status === 429 || status < 400
    return new RefreshError(
      `The refresh failed: the token endpoint answered HTTP ${status}`,
      { status, retryable, retryAfter },
      { cause },
    )
  }
  const name = typeof like.name === 'string' ? like.name : typeof thrown
  const message = typeof like.message === 'string' ? `: ${redact(like.message, secrets)}` : ''
  return new RefreshError(`The refresh failed (${name}${message})`, { retryable: true }, { cause })
}
