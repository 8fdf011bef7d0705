import { ReauthError, ReauthOptionsError } from '@reauth/core'
import * as oauth from 'oauth4webapi'

/** Options of {@link discover}. */
export interface DiscoverOptions {
  /** The `fetch` to use. Default: `globalThis.fetch`. */
  fetch?: typeof fetch
  /** Abort the discovery. */
  signal?: AbortSignal
  /** Allow an `http:` issuer (loopback development and tests only). */
  allowInsecureRequests?: boolean
}

/**
 * Discover an authorization server: OpenID Connect Discovery
 * (`/.well-known/openid-configuration`) first, then RFC 8414
 * (`/.well-known/oauth-authorization-server`). The document's `issuer` must equal the
 * given issuer exactly, or discovery fails (mix-up protection).
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
  const http = {
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.allowInsecureRequests ? { [oauth.allowInsecureRequests]: true } : {}),
    [oauth.customFetch]: (input: string, init: oauth.CustomFetchOptions<'GET', undefined>) =>
      (options.fetch ?? globalThis.fetch)(input, init as unknown as RequestInit),
  }
  const failures: unknown[] = []
  for (const algorithm of ['oidc', 'oauth2'] as const) {
    try {
      const response = await oauth.discoveryRequest(url, { ...http, algorithm })
      return await oauth.processDiscoveryResponse(url, response)
    } catch (error) {
      if (options.signal?.aborted) throw error
      failures.push(error)
    }
  }
  throw new ReauthError(
    'DISCOVERY_FAILED',
    `Discovery failed for issuer ${url.origin}${url.pathname} (tried OpenID Connect and RFC 8414)`,
    { cause: new AggregateError(failures, 'discovery attempts') },
  )
}
