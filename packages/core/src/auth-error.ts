import type { AuthResponse } from './types.js'

/** One challenge of a `WWW-Authenticate` header (RFC 9110 §11.6.1). */
export interface Challenge {
  /** The auth scheme as sent, e.g. `Bearer` or `DPoP` (compare case-insensitively). */
  scheme: string
  /** Its auth-params, names lower-cased, quoted values unescaped. */
  params: Record<string, string>
  /** A token68 credential instead of params, when the challenge has one. */
  token68?: string
}

const TCHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/
const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*/

/**
 * Parse a `WWW-Authenticate` value as RFC 9110 §11.6.1 says: several challenges in one header
 * (or several headers joined with commas), auth-params with token or quoted-string values
 * (commas and escapes inside quotes), or a token68. Malformed input ends the parse; what was
 * read so far is returned.
 *
 * @example
 * parseChallenges('DPoP error="use_dpop_nonce", Bearer error="invalid_token"')
 * // [{ scheme: 'DPoP', params: { error: 'use_dpop_nonce' } }, { scheme: 'Bearer', params: { error: 'invalid_token' } }]
 */
export function parseChallenges(header: string | null | undefined): Challenge[] {
  const challenges: Challenge[] = []
  if (!header) return challenges
  const text = header.slice(0, 8_192)
  let i = 0
  const skip = (chars: RegExp) => {
    while (i < text.length && chars.test(text[i] as string)) i++
  }
  const token = (): string => {
    const start = i
    while (i < text.length && TCHAR.test(text[i] as string)) i++
    return text.slice(start, i)
  }
  let current: Challenge | undefined
  while (i < text.length) {
    skip(/[\s,]/)
    if (i >= text.length) break
    const name = token()
    if (name === '') break
    skip(/[ \t]/)
    if (current && text[i] === '=' && current.token68 === undefined) {
      // An auth-param of the current challenge.
      i++
      skip(/[ \t]/)
      let value = ''
      if (text[i] === '"') {
        i++
        while (i < text.length && text[i] !== '"') {
          if (text[i] === '\\' && i + 1 < text.length) i++
          value += text[i]
          i++
        }
        i++
      } else value = token()
      current.params[name.toLowerCase()] ??= value
      continue
    }
    // A new challenge: its scheme, then a token68, params, or nothing.
    current = { scheme: name, params: {} }
    challenges.push(current)
    const rest = text.slice(i)
    const t68 = TOKEN68.exec(rest)?.[0]
    if (t68 && /^[ \t]*(,|$)/.test(rest.slice(t68.length)) && !/^[^=]+=[^=]/.test(t68)) {
      current.token68 = t68
      i += t68.length
    }
  }
  return challenges
}

/**
 * The `error` of the challenge for `scheme` (default: the Bearer challenge, else a DPoP one),
 * or `undefined` when there is none (RFC 6750 §3, RFC 9449 §7.1).
 *
 * @example
 * bearerError('Bearer realm="api", error="insufficient_scope"') // 'insufficient_scope'
 * bearerError('Bearer realm="x, error=insufficient_scope", error="invalid_token"') // 'invalid_token'
 */
export function bearerError(
  header: string | null | undefined,
  schemes: readonly string[] = ['bearer', 'dpop'],
): string | undefined {
  const challenges = parseChallenges(header)
  for (const scheme of schemes) {
    const challenge = challenges.find((c) => c.scheme.toLowerCase() === scheme)
    if (challenge) return challenge.params.error
  }
  return undefined
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

/**
 * What a `WWW-Authenticate` value asks of a DPoP client (RFC 9449 §7.1, §9): `'use_dpop_nonce'`
 * (send again with the `DPoP-Nonce` of the response, no grant), `'invalid_token'` (refresh, as
 * for Bearer), or `undefined` when its DPoP challenge says neither or there is none.
 *
 * @example
 * dpopChallenge('DPoP error="use_dpop_nonce", error_description="Resource server requires nonce"')
 * // 'use_dpop_nonce'
 */
export function dpopChallenge(
  header: string | null | undefined,
): 'use_dpop_nonce' | 'invalid_token' | undefined {
  const error = bearerError(header, ['dpop'])
  return error === 'use_dpop_nonce' || error === 'invalid_token' ? error : undefined
}

/** A `401` whose DPoP challenge asks for a (new) nonce (RFC 9449 §9). */
export function asksForNonce(response: AuthResponse): boolean {
  const challenge = response.headers.get('www-authenticate')
  return (
    response.status === 401 &&
    typeof challenge === 'string' &&
    dpopChallenge(challenge) === 'use_dpop_nonce'
  )
}
