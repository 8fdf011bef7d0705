/** Tokens on a fake clock, for tests of the margin and the refresh-ahead window. */
import type { TokenSet } from '@reauth/core'

/** The fake clock's start (`vi.useFakeTimers({ now: T0 })`). */
export const T0 = Date.UTC(2030, 0, 1, 12)
export const HOUR = 3_600_000

/** Set `n` of a one-hour lifetime, `left` ms before its expiry at {@link T0}. */
export function hourToken(n: number, left: number): TokenSet {
  return {
    accessToken: `at-${n}`,
    tokenType: 'Bearer',
    refreshToken: `rt-${n}`,
    issuedAt: T0 + left - HOUR,
    expiresAt: T0 + left,
  }
}

/** Let chained promises settle (no timers run). */
export async function flush(): Promise<void> {
  for (let i = 0; i < 30; i++) await Promise.resolve()
}
