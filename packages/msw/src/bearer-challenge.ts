/**
 * Extra auth-params of a Bearer challenge. `realm` defaults to `'reauth-test'`; `scope` is
 * the scope an `insufficient_scope` request would need.
 *
 * @example
 * const params: BearerChallengeParams = { realm: 'api', scope: 'read write' }
 */
export interface BearerChallengeParams {
  realm?: string
  scope?: string
  [param: string]: string | undefined
}

function quote(value: string): string {
  return `"${value.replace(/[\\"]/g, '\\$&')}"`
}

/**
 * A `WWW-Authenticate` value for a Bearer challenge (RFC 6750 §3): `realm` first, then
 * `error`, `error_description` and the other params in order. Without `error` it is the
 * challenge for a request that carried no credentials at all (RFC 6750 §3.1: no error code).
 * Never put a token value in `description`.
 *
 * @example
 * bearerChallenge('invalid_token', 'The access token expired', { realm: 'api' })
 * // 'Bearer realm="api", error="invalid_token", error_description="The access token expired"'
 * bearerChallenge() // 'Bearer realm="reauth-test"'
 */
export function bearerChallenge(
  error?: string,
  description?: string,
  extra: BearerChallengeParams = {},
): string {
  const { realm = 'reauth-test', ...rest } = extra
  const params: string[] = [`realm=${quote(realm)}`]
  if (error !== undefined) params.push(`error=${quote(error)}`)
  if (description !== undefined) params.push(`error_description=${quote(description)}`)
  for (const [name, value] of Object.entries(rest)) {
    if (value !== undefined) params.push(`${name}=${quote(value)}`)
  }
  return `Bearer ${params.join(', ')}`
}
