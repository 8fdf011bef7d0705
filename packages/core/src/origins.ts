import { ReauthOptionsError } from './errors.js'
import type { OriginPolicy } from './types.js'

/** Decides whether a URL may receive the token. */
export type OriginMatcher = (url: URL) => boolean

/**
 * Turn an {@link OriginPolicy} into a matcher, validating it. Strings are compared with the
 * URL's exact origin (scheme, host and port); RegExps are tested against the origin.
 *
 * @example
 * const allowed = createOriginMatcher(['https://api.example.com'])
 * allowed(new URL('https://api.example.com/me')) // true
 * allowed(new URL('https://evil.example/me'))    // false
 */
export function createOriginMatcher(policy: OriginPolicy, option = 'origins'): OriginMatcher {
  if (typeof policy === 'function') return policy
  if (!Array.isArray(policy)) {
    throw new ReauthOptionsError(`"${option}" must be an array of origins or a function`)
  }
  const exact = new Set<string>()
  const patterns: RegExp[] = []
  for (const entry of policy) {
    if (entry instanceof RegExp) {
      // `g` and `y` make test() stateful (lastIndex): every other request would go without
      // the token. A copy without them matches the same origins every time.
      patterns.push(new RegExp(entry.source, entry.flags.replace(/[gy]/g, '')))
      continue
    }
    if (typeof entry !== 'string') {
      throw new ReauthOptionsError(`"${option}" entries must be strings or RegExps`)
    }
    let origin: string
    try {
      origin = new URL(entry).origin
    } catch {
      throw new ReauthOptionsError(`"${option}" entry "${entry}" is not an absolute URL`)
    }
    if (origin === 'null') {
      throw new ReauthOptionsError(`"${option}" entry "${entry}" has no origin`)
    }
    exact.add(origin)
  }
  return (url) => exact.has(url.origin) || patterns.some((pattern) => pattern.test(url.origin))
}

/**
 * The origins an adapter sends the token to: its own `origins`, else the engine's, else the
 * origin of its client's base URL (axios `baseURL`, ky `prefixUrl`, the page for fetch). An
 * explicit list always wins over an inferred one. With none of them, throws
 * `ReauthOptionsError`: reauth never guesses where a token may go.
 *
 * @example
 * const allowed = adapterOrigins(engine, options.origins, baseOrigin, 'the instance a baseURL')
 */
export function adapterOrigins(
  engine: { readonly origins: OriginMatcher | undefined },
  own: OriginPolicy | undefined,
  base: string | undefined,
  baseHint: string,
): OriginMatcher {
  if (own !== undefined) return createOriginMatcher(own)
  if (engine.origins) return engine.origins
  if (base === undefined) {
    throw new ReauthOptionsError(
      `"origins" is required: name the origins that may receive the token, set it on the engine, or give ${baseHint}`,
    )
  }
  return createOriginMatcher([base])
}
