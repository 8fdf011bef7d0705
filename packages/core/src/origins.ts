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
  const matcher = listMatcher(policy, option)
  pure.add(matcher)
  return matcher
}

/** Matchers built from lists: their answer for a URL never changes, so it may be cached. */
const pure = new WeakSet<OriginMatcher>()

/** Mark a matcher built from lists only (see {@link isPureMatcher}). */
export function markPure(matcher: OriginMatcher): void {
  pure.add(matcher)
}

/** Does this matcher always give the same answer for the same URL (a list, not a predicate)? */
export function isPureMatcher(matcher: OriginMatcher): boolean {
  return pure.has(matcher)
}

function listMatcher(policy: ReadonlyArray<string | RegExp>, option: string): OriginMatcher {
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
