import { ReauthOptionsError } from '@reauth/core'
import * as oauth from 'oauth4webapi'
import { DiscoveryError, withoutCause } from './errors.js'

/** Options of {@link discover}. */
export interface DiscoverOptions {
  /** The `fetch` to use. Default: `globalThis.fetch` at call time. */
  fetch?: typeof fetch
  /** Abort the discovery. */
  signal?: AbortSignal
  /** Allow an `http:` issuer and `http:` redirects (loopback development and tests only). */
  allowInsecureRequests?: boolean
}

/** Redirects followed per well-known URL. */
export const MAX_DISCOVERY_REDIRECTS = 5

const REDIRECTS = new Set([301, 302, 303, 307, 308])

/** Metadata that came from `/.well-known/openid-configuration`: an OpenID Provider. */
const fromOpenIdConfiguration = new WeakSet<object>()

/**
 * True when the authorization server is an OpenID Provider: its metadata came from OpenID
 * Connect Discovery, or it has what only OpenID Provider metadata has (`userinfo_endpoint`,
 * `id_token_signing_alg_values_supported`, `subject_types_supported`, or `openid` in
 * `scopes_supported`). A plain RFC 8414 server is not one: no `openid` scope by default and
 * no ID token required.
 */
export function isOpenIdProvider(server: oauth.AuthorizationServer): boolean {
  return (
    fromOpenIdConfiguration.has(server) ||
    typeof server.userinfo_endpoint === 'string' ||
    Array.isArray(server.id_token_signing_alg_values_supported) ||
    Array.isArray((server as { subject_types_supported?: unknown }).subject_types_supported) ||
    (Array.isArray(server.scopes_supported) && server.scopes_supported.includes('openid'))
  )
}

/**
 * Check that a URL may be used: `https:`, or `http:` with `allowInsecureRequests`. Throws a
 * {@link ReauthOptionsError} that names the option.
 */
export function assertSecureUrl(
  url: URL,
  name: string,
  allowInsecureRequests: boolean | undefined,
): void {
  if (url.protocol === 'https:') return
  if (url.protocol === 'http:') {
    if (allowInsecureRequests) return
    throw new ReauthOptionsError(
      `${name} is an http: URL (${url.origin}); use https, or set "allowInsecureRequests": true (loopback development and tests only)`,
    )
  }
  throw new ReauthOptionsError(`${name} must be an https: URL, not ${url.protocol}`)
}

/** Why one well-known URL failed, and whether trying again can help. */
interface Attempt {
  path: string
  reason: string
  retryable: boolean
  status?: number
  error: unknown
}

function isTransientStatus(status: number): boolean {
  return status >= 500 || status === 408 || status === 429
}

/**
 * Discover an authorization server: OpenID Connect Discovery
 * (`/.well-known/openid-configuration`) first, then RFC 8414
 * (`/.well-known/oauth-authorization-server`). Redirects are followed (at most
 * {@link MAX_DISCOVERY_REDIRECTS}, `https:` only unless `allowInsecureRequests`). The
 * document's `issuer` must equal the given issuer exactly, or discovery fails (mix-up
 * protection).
 *
 * RFC 8414 is tried only when the OpenID Connect URL answered (404, not metadata): a
 * network error or a 5xx there is not taken for "not an OpenID Provider".
 *
 * Throws a {@link DiscoveryError}: `retryable: true` when a well-known URL had a network
 * error or answered 5xx, 408 or 429; `retryable: false` when discovery cannot succeed as
 * configured (404 everywhere, an invalid document, an issuer mismatch, too many redirects).
 * An `http:` issuer without `allowInsecureRequests` is a `ReauthOptionsError`.
 *
 * @example
 * const server = await discover('https://accounts.example.com')
 * server.token_endpoint // 'https://accounts.example.com/oauth/token'
 */
export async function discover(
  issuer: string | URL,
  options: DiscoverOptions = {},
): Promise<oauth.AuthorizationServer> {
  let url: URL
  try {
    url = new URL(issuer)
  } catch {
    throw new ReauthOptionsError('"issuer" must be an absolute URL')
  }
  assertSecureUrl(url, '"issuer"', options.allowInsecureRequests)
  const insecure = options.allowInsecureRequests === true
  const attempts: Attempt[] = []
  for (const algorithm of ['oidc', 'oauth2'] as const) {
    const wellKnown = { current: '' }
    try {
      const response = await oauth.discoveryRequest(url, {
        algorithm,
        ...(options.signal ? { signal: options.signal } : {}),
        ...(insecure ? { [oauth.allowInsecureRequests]: true } : {}),
        [oauth.customFetch]: (input, init) =>
          following(new URL(input), init as unknown as RequestInit, options, wellKnown),
      })
      const metadata = await oauth.processDiscoveryResponse(url, response)
      if (algorithm === 'oidc') fromOpenIdConfiguration.add(metadata)
      return metadata
    } catch (error) {
      if (options.signal?.aborted) throw error
      const attempt = describe(error, wellKnown.current)
      attempts.push(attempt)
      // An OpenID Provider that is down for a moment must not pass for a plain OAuth 2.0
      // server (no openid scope by default): fall back to RFC 8414 only when it answered.
      if (attempt.retryable) break
    }
  }
  const retryable = attempts.some((attempt) => attempt.retryable)
  const decisive = attempts.find((attempt) => attempt.retryable) ?? attempts[0]
  throw new DiscoveryError(
    `Discovery failed for issuer ${url.href}: ${attempts
      .map((attempt) => `${attempt.path} ${attempt.reason}`)
      .join('; ')}${retryable ? '' : ' (not retryable: check the issuer)'}`,
    { retryable, status: decisive?.status },
    { cause: decisive?.error },
  )
}

/**
 * The discovery GET, following redirects itself (oauth4webapi sends `redirect: 'manual'`):
 * bounded, and never from https to http unless insecure requests are allowed.
 */
async function following(
  start: URL,
  init: RequestInit,
  options: DiscoverOptions,
  wellKnown: { current: string },
): Promise<Response> {
  const fetchImpl = options.fetch ?? globalThis.fetch
  let url = start
  for (let hop = 0; ; hop++) {
    wellKnown.current = url.pathname
    const response = await fetchImpl(url.href, { ...init, redirect: 'manual' })
    if (response.type === 'opaqueredirect') {
      // Browsers hide the Location of a manual redirect: let the browser follow, then check.
      const followed = await fetchImpl(url.href, { ...init, redirect: 'follow' })
      if (followed.url) checkRedirect(new URL(followed.url), options)
      return followed
    }
    const location = REDIRECTS.has(response.status) ? response.headers.get('location') : null
    if (location === null) return response
    await response.body?.cancel()
    if (hop >= MAX_DISCOVERY_REDIRECTS) {
      throw new DiscoveryError(`redirected more than ${MAX_DISCOVERY_REDIRECTS} times`, {
        retryable: false,
        status: response.status,
      })
    }
    url = new URL(location, url)
    checkRedirect(url, options)
  }
}

function checkRedirect(url: URL, options: DiscoverOptions): void {
  const allowed =
    url.protocol === 'https:' || (url.protocol === 'http:' && options.allowInsecureRequests)
  if (!allowed) {
    throw new DiscoveryError(
      `redirected to a ${url.protocol} URL (${url.origin}); only https is followed unless "allowInsecureRequests" is set`,
      { retryable: false },
    )
  }
}

function describe(error: unknown, path: string): Attempt {
  if (error instanceof DiscoveryError) {
    return { path, reason: error.message, retryable: error.retryable, error }
  }
  if (error instanceof oauth.OperationProcessingError) {
    const response = error.cause instanceof Response ? error.cause : undefined
    if (response && response.status !== 200) {
      return {
        path,
        reason: `answered HTTP ${response.status}`,
        retryable: isTransientStatus(response.status),
        status: response.status,
        error: new DiscoveryError(`HTTP ${response.status}`, {
          retryable: isTransientStatus(response.status),
          status: response.status,
        }),
      }
    }
    const reason =
      error.code === oauth.JSON_ATTRIBUTE_COMPARISON
        ? 'names another issuer'
        : `is not valid metadata (${error.message})`
    return { path, reason, retryable: false, status: 200, error: withoutCause(error) }
  }
  // fetch's network error (connection refused, DNS, TLS) or anything else a custom fetch
  // threw: nothing says the configuration is wrong, so a later attempt may work.
  return {
    path,
    reason: `could not be fetched (${error instanceof Error ? error.message : String(error)})`,
    retryable: true,
    error,
  }
}
