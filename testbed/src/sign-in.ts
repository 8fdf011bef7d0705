import type { TokenSet } from '@reauth/core'
import { beginSignIn, completeSignIn, type SignInOptions } from '@reauth/oauth'
import { PUBLIC_CLIENT_ID, REDIRECT_URI } from './provider.js'

/** The options the examples use to sign in and refresh against the embedded provider. */
export function clientOptions(issuer: string): SignInOptions {
  return {
    issuer,
    clientId: PUBLIC_CLIENT_ID,
    redirectUri: REDIRECT_URI,
    scope: 'openid',
    allowInsecureRequests: true,
  }
}

/**
 * Sign in with authorization code + PKCE + offline_access, driving the provider's
 * redirects and its auto-consenting interaction over HTTP as a browser would (cookies
 * included). Returns the first token set, with a real refresh token. `more` adds sign-in
 * options: another scope, resources (RFC 8707: the refresh token then serves each of them),
 * or `{ dpop: keyPair }` for DPoP-bound tokens (`dpop_jkt` and a proof).
 */
export async function signInOverHttp(
  issuer: string,
  more: Partial<SignInOptions> = {},
): Promise<TokenSet> {
  const options = { ...clientOptions(issuer), ...more }
  const request = await beginSignIn(options)
  const jar = new Map<string, string>()
  let url = request.url
  for (let hop = 0; hop < 12; hop++) {
    const cookie = [...jar].map(([name, value]) => `${name}=${value}`).join('; ')
    const response = await fetch(url, {
      redirect: 'manual',
      headers: cookie ? { cookie } : {},
    })
    for (const line of response.headers.getSetCookie()) {
      const [pair = ''] = line.split(';')
      const index = pair.indexOf('=')
      const name = pair.slice(0, index).trim()
      const value = pair.slice(index + 1).trim()
      if (value === '' || /expires=Thu, 01 Jan 1970/i.test(line)) jar.delete(name)
      else jar.set(name, value)
    }
    await response.arrayBuffer()
    const location = response.headers.get('location')
    if (!location) throw new Error(`sign-in stopped at HTTP ${response.status} (${url.pathname})`)
    const next = new URL(location, url)
    if (next.href.startsWith(REDIRECT_URI)) {
      return completeSignIn(options, { callbackUrl: next, ...request })
    }
    url = next
  }
  throw new Error('sign-in did not reach the redirect URI')
}
