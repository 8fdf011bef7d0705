import { type TokenSet, tokenSetProblem } from '@reauth/core'

const OPTIONAL = ['refreshToken', 'expiresAt', 'issuedAt', 'scope', 'idToken'] as const

/**
 * A token set read from storage or a message, or `undefined` when absent or not a valid set.
 * Another script on the page, an older version of the app or a broken write may have put
 * anything there: it is checked and copied field by field, never trusted.
 */
export function toTokenSet(value: unknown): TokenSet | undefined {
  if (value === null || value === undefined || tokenSetProblem(value) !== undefined) {
    return undefined
  }
  const source = value as TokenSet
  const tokens: TokenSet = { accessToken: source.accessToken, tokenType: source.tokenType }
  for (const field of OPTIONAL) {
    if (source[field] !== undefined) Object.assign(tokens, { [field]: source[field] })
  }
  return tokens
}
