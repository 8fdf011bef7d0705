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
 * Parse a `Retry-After` value (delay-seconds or an HTTP date) into milliseconds from `now`.
 *
 * @example
 * parseRetryAfter('2', Date.now()) // 2000
 */
export function parseRetryAfter(value: unknown, now: number): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value : undefined
  if (typeof value !== 'string' || value.trim() === '') return undefined
  const trimmed = value.trim()
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000
  const date = Date.parse(trimmed)
  return Number.isNaN(date) ? undefined : Math.max(0, date - now)
}

interface ErrorLike {
  name?: unknown
  message?: unknown
  error?: unknown
  error_description?: unknown
  errorDescription?: unknown
  status?: unknown
  retryAfter?: unknown
  response?: { status?: unknown; headers?: { get?: (name: string) => string | null } }
}

function stringOrUndefined(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined
}

/** Remove every secret from a text; used for messages built from foreign errors. */
export function redact(text: string, secrets: ReadonlyArray<string | undefined>): string {
  let result = text
  for (const secret of secrets) {
    if (secret && secret.length >= 4) result = result.split(secret).join('[redacted]')
  }
  return result
}

/**
 * Map whatever a `refresh` function threw to the engine's two outcomes: a terminal
 * {@link SessionExpiredError} or a {@link RefreshError}. `secrets` are scrubbed from any
 * message taken from the foreign error.
 */
export function classifyRefreshFailure(
  thrown: unknown,
  secrets: ReadonlyArray<string | undefined>,
  now: number,
): SessionExpiredError | RefreshError {
  if (isSessionExpiredError(thrown) || isRefreshError(thrown)) return thrown
  const like = (typeof thrown === 'object' && thrown !== null ? thrown : {}) as ErrorLike
  const status =
    typeof like.status === 'number'
      ? like.status
      : typeof like.response?.status === 'number'
        ? like.response.status
        : undefined
  const retryAfter =
    parseRetryAfter(like.retryAfter, now) ??
    parseRetryAfter(like.response?.headers?.get?.('retry-after') ?? undefined, now)
  const error = stringOrUndefined(like.error)
  const errorDescription =
    stringOrUndefined(like.errorDescription) ?? stringOrUndefined(like.error_description)
  const statusText = status === undefined ? '' : ` (HTTP ${status})`
  if (error !== undefined) {
    const fields = { error, errorDescription, status }
    if (TERMINAL_OAUTH_ERRORS.has(error)) {
      return new SessionExpiredError(
        `The session has expired: the token endpoint answered "${error}"${statusText}`,
        fields,
        { cause: thrown },
      )
    }
    const retryable = status === undefined || status >= 500 || status === 429
    return new RefreshError(
      `The refresh failed: the token endpoint answered "${error}"${statusText}`,
      { ...fields, retryable, retryAfter },
      { cause: thrown },
    )
  }
  if (status !== undefined) {
    return new RefreshError(
      `The refresh failed: the token endpoint answered HTTP ${status}`,
      { status, retryable: true, retryAfter },
      { cause: thrown },
    )
  }
  const name = typeof like.name === 'string' ? like.name : typeof thrown
  const message = typeof like.message === 'string' ? `: ${redact(like.message, secrets)}` : ''
  return new RefreshError(
    `The refresh failed (${name}${message})`,
    { retryable: true },
    { cause: thrown },
  )
}
