import { RefreshError } from './errors.js'
import type { SessionEnd, TokenSet } from './types.js'

/** Ten years: an `expires_in` beyond this is treated as a malformed response. */
const MAX_EXPIRES_IN_SECONDS = 10 * 365 * 24 * 3600

function malformed(field: string, what: string, refreshToken?: unknown): RefreshError {
  return new RefreshError(
    `Malformed token response: "${field}" ${what}`,
    { retryable: true, field },
    // The server rotated already: its new refresh token must reach the store regardless.
    { refreshToken: typeof refreshToken === 'string' ? refreshToken : undefined },
  )
}

/**
 * `expires_in` as servers send it: a number, or a numeric string (RFC 6749 says number;
 * oauth4webapi and several servers accept or send `"3600"`). `undefined` when malformed.
 */
function seconds(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined
  if (typeof value === 'string' && /^\s*\d+(\.\d+)?\s*$/.test(value)) return Number(value)
  return undefined
}

function optionalString(body: Record<string, unknown>, field: string): string | undefined {
  const value = body[field]
  if (value === undefined || value === null) return undefined
  if (typeof value !== 'string' || value === '')
    throw malformed(field, 'must be a non-empty string', body.refresh_token)
  return value
}

/** `Bearer` or `DPoP` (RFC 9449 §5) in their canonical case, from any case; else `undefined`. */
function knownTokenType(value: string): 'Bearer' | 'DPoP' | undefined {
  const type = value.toLowerCase()
  return type === 'bearer' ? 'Bearer' : type === 'dpop' ? 'DPoP' : undefined
}

/** A JSON object decoded from one base64url segment, or `undefined`. */
function jsonSegment(segment: string): Record<string, unknown> | undefined {
  if (!/^[A-Za-z0-9_-]+$/.test(segment)) return undefined
  try {
    const binary = atob(segment.replace(/-/g, '+').replace(/_/g, '/'))
    const text = new TextDecoder('utf-8', { fatal: true }).decode(
      Uint8Array.from(binary, (char) => char.charCodeAt(0)),
    )
    const value: unknown = JSON.parse(text)
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined
  } catch {
    return undefined
  }
}

/**
 * When a JWT access token (JWS compact: header, payload, signature) expires, read from its
 * `exp` claim — a hint for refreshing ahead, nothing is verified. With a numeric `iat` the
 * lifetime `exp - iat` is counted from `sentAt`, as `expires_in` is, so a skewed local clock
 * cannot make every token look expired (or never expiring); without `iat` it is `exp` itself.
 * `undefined` for an opaque token, a malformed JWT, or an `exp` that is not a number of seconds
 * within ten years.
 */
function jwtExpiry(accessToken: string, sentAt: number): number | undefined {
  const parts = accessToken.split('.')
  if (parts.length !== 3) return undefined
  const [header = '', payload = ''] = parts
  if (jsonSegment(header) === undefined) return undefined
  const claims = jsonSegment(payload)
  const exp = claims?.exp
  if (typeof exp !== 'number' || !Number.isFinite(exp) || exp <= 0) return undefined
  const iat = claims?.iat
  if (typeof iat === 'number' && Number.isFinite(iat) && iat <= exp) {
    const lifetime = exp - iat
    return lifetime > MAX_EXPIRES_IN_SECONDS ? undefined : sentAt + lifetime * 1000
  }
  return exp > sentAt / 1000 + MAX_EXPIRES_IN_SECONDS ? undefined : exp * 1000
}

/** Options of {@link parseTokenResponse}. */
export interface ParseTokenResponseOptions {
  /** The local clock (ms) when the token request was sent; `expiresAt` is computed from it. */
  sentAt: number
}

/**
 * Validate an RFC 6749 §5.1 token response body and turn it into a {@link TokenSet}.
 * `expiresAt` is `sentAt + expires_in`; without `expires_in`, a JWT access token's `exp`
 * claim gives it (a hint for refreshing ahead: no signature is checked; see the README).
 * Throws a {@link RefreshError} (`retryable: true`) naming the malformed field, never its value.
 *
 * @example
 * const sentAt = Date.now()
 * const response = await fetch(tokenEndpoint, { method: 'POST', body })
 * return parseTokenResponse(await response.json(), { sentAt })
 */
export function parseTokenResponse(body: unknown, options: ParseTokenResponseOptions): TokenSet {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw malformed('body', 'must be a JSON object')
  }
  const record = body as Record<string, unknown>
  const issued = record.refresh_token
  const accessToken = record.access_token
  if (typeof accessToken !== 'string' || accessToken === '') {
    throw malformed('access_token', 'is missing or not a non-empty string', issued)
  }
  const tokenType = record.token_type
  if (typeof tokenType !== 'string') {
    throw malformed('token_type', 'is missing or not a string', issued)
  }
  const type = knownTokenType(tokenType)
  if (type === undefined) {
    throw malformed(
      'token_type',
      `is "${tokenType.slice(0, 32)}", only "Bearer" and "DPoP" are supported`,
      issued,
    )
  }
  const tokens: TokenSet = { accessToken, tokenType: type, issuedAt: options.sentAt }
  const expiresIn = record.expires_in
  if (expiresIn !== undefined && expiresIn !== null) {
    const value = seconds(expiresIn)
    if (value === undefined) throw malformed('expires_in', 'must be a number of seconds', issued)
    if (value < 0 || value > MAX_EXPIRES_IN_SECONDS) {
      throw malformed(
        'expires_in',
        `is out of range (0 to ${MAX_EXPIRES_IN_SECONDS} seconds)`,
        issued,
      )
    }
    tokens.expiresAt = options.sentAt + value * 1000
  } else {
    // No expires_in (RFC 6749 makes it RECOMMENDED): a JWT access token says when it expires.
    const expiresAt = jwtExpiry(accessToken, options.sentAt)
    if (expiresAt !== undefined) tokens.expiresAt = expiresAt
  }
  const refreshToken = optionalString(record, 'refresh_token')
  if (refreshToken !== undefined) tokens.refreshToken = refreshToken
  const scope = record.scope
  if (typeof scope === 'string') tokens.scope = scope
  const idToken = optionalString(record, 'id_token')
  if (idToken !== undefined) tokens.idToken = idToken
  return tokens
}

/**
 * Check that a value is a usable {@link TokenSet}; returns a message naming the bad field,
 * or `undefined` when it is fine. Used for `setTokens` and for what `refresh` returns.
 */
export function tokenSetProblem(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return 'must be an object'
  const tokens = value as Record<string, unknown>
  if (typeof tokens.accessToken !== 'string' || tokens.accessToken === '') {
    return '"accessToken" must be a non-empty string'
  }
  if (typeof tokens.tokenType !== 'string' || knownTokenType(tokens.tokenType) === undefined) {
    return '"tokenType" must be "Bearer" or "DPoP"'
  }
  for (const field of ['refreshToken', 'scope', 'idToken'] as const) {
    if (tokens[field] !== undefined && typeof tokens[field] !== 'string') {
      return `"${field}" must be a string`
    }
  }
  for (const field of ['expiresAt', 'issuedAt'] as const) {
    const time = tokens[field]
    if (time !== undefined && (typeof time !== 'number' || !Number.isFinite(time))) {
      return `"${field}" must be a finite number (ms since the epoch)`
    }
  }
  if (tokens.dpopKey !== undefined) {
    const pair = tokens.dpopKey as Partial<CryptoKeyPair> | null
    if (typeof pair !== 'object' || pair === null || !pair.privateKey || !pair.publicKey) {
      return '"dpopKey" must be a CryptoKeyPair'
    }
  }
  if (tokens.resources !== undefined) {
    if (typeof tokens.resources !== 'object' || tokens.resources === null) {
      return '"resources" must be an object'
    }
    for (const [resource, token] of Object.entries(tokens.resources)) {
      const problem = tokenSetProblem(token)
      if (problem) return `"resources" entry "${resource}": ${problem}`
    }
  }
  return undefined
}

/**
 * True for the {@link SessionEnd} a store holds after a terminal failure.
 *
 * @example
 * if (isSessionEnd(await store.get())) showSignIn()
 */
export function isSessionEnd(value: unknown): value is SessionEnd {
  if (typeof value !== 'object' || value === null) return false
  const ended = (value as { ended?: unknown }).ended
  return (
    typeof ended === 'object' &&
    ended !== null &&
    typeof (ended as { at?: unknown }).at === 'number'
  )
}

/**
 * Check a value a store holds: a {@link TokenSet} (see {@link tokenSetProblem}) or a
 * {@link SessionEnd}. Returns a message naming the bad field, or `undefined`.
 */
export function storedSessionProblem(value: unknown): string | undefined {
  if (isSessionEnd(value)) {
    const { error, errorDescription, status, at } = value.ended
    if (!Number.isFinite(at)) return '"ended.at" must be a finite number'
    if (error !== undefined && typeof error !== 'string') return '"ended.error" must be a string'
    if (errorDescription !== undefined && typeof errorDescription !== 'string') {
      return '"ended.errorDescription" must be a string'
    }
    if (status !== undefined && typeof status !== 'number') return '"ended.status" must be a number'
    return undefined
  }
  return tokenSetProblem(value)
}

/** The header value per set object: one string for every request sent with the same set. */
const headerValues = new WeakMap<TokenSet, { type: unknown; token: string; value: string }>()

/**
 * The `Authorization` header value for a token set: `DPoP <token>` for a DPoP-bound set
 * (RFC 9449 §7.1, which then also needs a proof), `Bearer <token>` otherwise.
 */
export function authorizationHeader(tokens: TokenSet): string {
  const cached = headerValues.get(tokens)
  if (cached?.token === tokens.accessToken && cached.type === tokens.tokenType) return cached.value
  const scheme = knownTokenType(String(tokens.tokenType)) === 'DPoP' ? 'DPoP' : 'Bearer'
  const value = `${scheme} ${tokens.accessToken}`
  headerValues.set(tokens, { type: tokens.tokenType, token: tokens.accessToken, value })
  return value
}

/** Is this set a DPoP-bound one (RFC 9449): sent as `DPoP <token>` with a proof per request? */
export function isDpopBound(tokens: TokenSet): boolean {
  return knownTokenType(String(tokens.tokenType)) === 'DPoP'
}
