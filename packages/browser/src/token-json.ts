import {
  isSessionEnd,
  type SessionEnd,
  type StoredSession,
  storedSessionProblem,
  type TokenSet,
} from '@reauth/core'

const OPTIONAL = ['refreshToken', 'expiresAt', 'issuedAt', 'scope', 'idToken', 'resources'] as const
const END_OPTIONAL = ['error', 'errorDescription', 'status'] as const

/**
 * A token set read from storage or a message, or `undefined` when absent or not a valid set.
 * Another script on the page, an older version of the app or a broken write may have put
 * anything there: it is checked and copied field by field, never trusted.
 */
export function toTokenSet(value: unknown): TokenSet | undefined {
  if (value === null || value === undefined || isSessionEnd(value)) return undefined
  if (storedSessionProblem(value) !== undefined) {
    return undefined
  }
  const source = value as TokenSet
  const tokens: TokenSet = { accessToken: source.accessToken, tokenType: source.tokenType }
  for (const field of OPTIONAL) {
    if (source[field] !== undefined) Object.assign(tokens, { [field]: source[field] })
  }
  return tokens
}

/** A key thumbprint (RFC 7638, SHA-256, base64url): 43 characters. */
const JKT = /^[A-Za-z0-9_-]{43}$/

/**
 * What a store writes as JSON or posts to other tabs: the set without its DPoP key pair, with
 * the pair's thumbprint as `dpopJkt` when `jkt` is given (the pair itself is in IndexedDB).
 */
export function toWire(value: StoredSession, jkt: string | undefined): StoredSession {
  if (isSessionEnd(value)) return value
  const { dpopKey: _key, ...rest } = value
  return jkt === undefined ? rest : Object.assign(rest, { dpopJkt: jkt })
}

/**
 * Untrusted data (JSON, a message) as a stored session plus the thumbprint of the DPoP key
 * pair it names (`dpopJkt`), if any. A `dpopKey` in the data is never taken.
 */
export function fromWire(
  value: unknown,
): { tokens: StoredSession; jkt: string | undefined } | undefined {
  const tokens = toStoredSession(value)
  if (!tokens) return undefined
  const jkt = isSessionEnd(tokens) ? undefined : (value as { dpopJkt?: unknown }).dpopJkt
  return { tokens, jkt: typeof jkt === 'string' && JKT.test(jkt) ? jkt : undefined }
}

/**
 * A set given to a store's `set` (trusted): copied like {@link toStoredSession}, keeping its
 * `dpopKey`; `undefined` when invalid.
 */
export function toOwnSession(value: unknown): StoredSession | undefined {
  const copy = toStoredSession(value)
  if (!copy || isSessionEnd(copy)) return copy
  const key = (value as TokenSet).dpopKey
  return key === undefined ? copy : { ...copy, dpopKey: key }
}

/**
 * What a store may hold, from untrusted data: a token set, or the end of a session (after a
 * terminal refresh failure, so every tab's engine fails fast), copied field by field; else
 * `undefined`.
 */
export function toStoredSession(value: unknown): StoredSession | undefined {
  if (!isSessionEnd(value)) return toTokenSet(value)
  if (storedSessionProblem(value) !== undefined) return undefined
  const ended: SessionEnd['ended'] = { at: value.ended.at }
  for (const field of END_OPTIONAL) {
    if (value.ended[field] !== undefined) Object.assign(ended, { [field]: value.ended[field] })
  }
  return { ended }
}
