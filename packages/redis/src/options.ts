import { ReauthOptionsError } from '@reauth/core'

/** The largest delay `setTimeout` honours. */
export const MAX_TIMEOUT = 2_147_483_647

/** Validate an optional duration option (ms) at the factory. */
export function duration(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 1 || value > MAX_TIMEOUT) {
    throw new ReauthOptionsError(`"${name}" must be a number of ms between 1 and ${MAX_TIMEOUT}`)
  }
  return value
}

/** Validate an optional non-empty string option. */
export function text(value: unknown, name: string, fallback: string): string {
  if (value === undefined) return fallback
  if (typeof value !== 'string' || value === '') {
    throw new ReauthOptionsError(`"${name}" must be a non-empty string`)
  }
  return value
}
