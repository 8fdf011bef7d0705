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
