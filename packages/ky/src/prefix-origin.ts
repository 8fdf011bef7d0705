/** The options of a ky call or instance that locate its API (ky 1: `prefixUrl`; ky 2: `prefix`, `baseUrl`). */
export interface PrefixOptions {
  prefixUrl?: unknown
  prefix?: unknown
  baseUrl?: unknown
}

function absolute(value: unknown, base: string | undefined): URL | undefined {
  if (value === undefined || value === null || value === '') return undefined
  if (typeof value !== 'string' && !(value instanceof URL)) return undefined
  try {
    return new URL(value, base)
  } catch {
    return undefined
  }
}

/**
 * The origin a ky instance's requests go to by default: that of ky 1's `prefixUrl`, or of
 * ky 2's `prefix` resolved against its `baseUrl` (relative ones against the page, in a
 * browser). `undefined` when the options name none.
 *
 * @example
 * prefixOrigin({ prefixUrl: 'https://api.example.com/v1' }) // 'https://api.example.com'
 * prefixOrigin({ baseUrl: 'https://api.example.com' })      // 'https://api.example.com'
 * prefixOrigin({})                                          // undefined
 */
export function prefixOrigin(options: PrefixOptions): string | undefined {
  const page = (globalThis as { location?: { href?: string } }).location?.href
  const base = absolute(options.baseUrl, page)
  const url =
    absolute(options.prefixUrl, base?.href ?? page) ??
    absolute(options.prefix, base?.href ?? page) ??
    base
  if (!url || url.origin === 'null') return undefined
  return url.origin
}
