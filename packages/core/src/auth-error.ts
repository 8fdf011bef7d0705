import type { AuthResponse } from './types.js'

/**
 * Read the `error` parameter of a Bearer `WWW-Authenticate` challenge (RFC 6750 §3),
 * or `undefined` when there is none.
 *
 * @example
 * bearerError('Bearer realm="api", error="insufficient_scope"') // 'insufficient_scope'
 */
export function bearerError(header: string | null | undefined): string | undefined {
  if (!header) return undefined
  const match = /(?:^|[\s,])error\s*=\s*(?:"([^"]*)"|([^\s,]+))/i.exec(header)
  return match ? (match[1] ?? match[2]) : undefined
}

/**
 * The default auth-failure test: a 401, unless its Bearer challenge names an error other
 * than `invalid_token` (RFC 6750 §3: `insufficient_scope` or `invalid_request` won't be
 * fixed by a refresh). 403 is never a refresh trigger.
 *
 * @example
 * createEngine({ refresh, isAuthError: (r) => defaultIsAuthError(r) || r.status === 419 })
 */
export function defaultIsAuthError(response: AuthResponse): boolean {
  if (response.status !== 401) return false
  const error = bearerError(response.headers.get('www-authenticate'))
  return error === undefined || error === 'invalid_token'
}
