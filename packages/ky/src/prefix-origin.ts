import { baseOrigin } from '@reauth/core/adapter'

/** The options of a ky call or instance that locate its API (ky 1: `prefixUrl`; ky 2: `prefix`, `baseUrl`). */
export interface PrefixOptions {
  prefixUrl?: unknown
  prefix?: unknown
  baseUrl?: unknown
}

function isAbsolute(value: unknown): boolean {
  if (typeof value !== 'string' && !(value instanceof URL)) return false
  try {
    new URL(value)
    return true
  } catch {
    return false
  }
}

/**
 * The origin a ky instance's requests go to by default: that of ky 1's `prefixUrl`, or of
 * ky 2's `prefix` resolved against its `baseUrl`. A relative one stands for the page's origin
 * (core's `baseOrigin`). `undefined` when the options name none.
 *
 * @example
 * prefixOrigin({ prefixUrl: 'https://api.example.com/v1' }) // 'https://api.example.com'
 * prefixOrigin({ baseUrl: 'https://api.example.com' })      // 'https://api.example.com'
 * prefixOrigin({})                                          // undefined
 */
export function prefixOrigin(options: PrefixOptions): string | undefined {
  const prefix = [options.prefixUrl, options.prefix].find(
    (value) => value !== undefined && value !== null && value !== '',
  )
  if (isAbsolute(prefix)) return baseOrigin(prefix)
  return baseOrigin(options.baseUrl) ?? baseOrigin(prefix)
}
