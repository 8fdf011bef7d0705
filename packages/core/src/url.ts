/**
 * Where relative URLs go: the one place reauth resolves them, exactly as the platform's fetch
 * and XMLHttpRequest will. In a page that is the document's base URL (`document.baseURI`),
 * which a `<base href>` changes — not `location.href`. Every origin decision is made on the
 * URL the request will really reach.
 */

interface Globals {
  document?: { baseURI?: unknown }
  location?: { href?: unknown; origin?: unknown }
}

/**
 * The base URL relative request URLs resolve against: `document.baseURI` in a page (it honours
 * `<base href>`), `location.href` in a worker, `undefined` on a server.
 *
 * @example
 * requestBase() // 'https://app.example.com/' (or what a <base href> says)
 */
export function requestBase(): string | undefined {
  const { document, location } = globalThis as Globals
  if (typeof document?.baseURI === 'string' && document.baseURI !== '') return document.baseURI
  if (typeof location?.href === 'string' && location.href !== '') return location.href
  return undefined
}

/**
 * The page's own origin (`location.origin`), or `undefined` outside a page or for an opaque
 * (`'null'`) origin. This — never a `<base href>` — is the default origin a relative base URL
 * stands for.
 *
 * @example
 * pageOrigin() // 'https://app.example.com'
 */
export function pageOrigin(): string | undefined {
  const origin = (globalThis as Globals).location?.origin
  return typeof origin === 'string' && origin !== '' && origin !== 'null' ? origin : undefined
}

/**
 * The URL a request really goes to: `input` resolved against {@link requestBase}, or
 * `undefined` when it cannot be resolved.
 *
 * @example
 * resolveRequestUrl('/me') // URL('https://app.example.com/me') in a page
 */
export function resolveRequestUrl(input: string | URL): URL | undefined {
  try {
    return input instanceof URL ? new URL(input.href) : new URL(input, requestBase())
  } catch {
    return undefined
  }
}

/**
 * The origin a client's configured base URL (axios `baseURL`, ky `prefixUrl` / `prefix` /
 * `baseUrl`) allows by default: an absolute one's own origin; a relative one stands for the
 * page's origin. `undefined` when there is none.
 *
 * @example
 * baseOrigin('https://api.example.com/v1') // 'https://api.example.com'
 * baseOrigin('/api')                       // the page's origin, whatever <base href> says
 */
export function baseOrigin(base: unknown): string | undefined {
  if (base instanceof URL) base = base.href
  if (typeof base !== 'string' || base === '') return undefined
  let absolute: URL | undefined
  try {
    absolute = new URL(base)
  } catch {
    return pageOrigin()
  }
  return absolute.origin === 'null' ? undefined : absolute.origin
}
