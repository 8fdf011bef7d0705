import type { TokenSet } from '@reauth/core'
import type { OAuthClientOptions } from '@reauth/oauth'
import { startApi } from './api.js'
import { startProvider } from './provider.js'
import { clientOptions, signInOverHttp } from './sign-in.js'

/** What an example needs: a client for the refresh grant, first tokens and an API origin. */
export interface ExampleSession {
  /** For `createRefreshGrant`. */
  client: OAuthClientOptions
  /** The first token set. */
  tokens: TokenSet
  /** The protected API's origin. */
  api: string
  /** The path of a protected resource on it. */
  path: string
  /** Where the tokens came from, for the example's output. */
  describe: string
  close(): Promise<void>
}

/**
 * A session for the examples. With `REAUTH_ISSUER`, `REAUTH_CLIENT_ID`,
 * `REAUTH_REFRESH_TOKEN` and `REAUTH_API_URL` set, a real provider of yours (discovered from
 * its issuer) and your API; otherwise the embedded oidc-provider and protected API on
 * 127.0.0.1 with short-lived tokens, signed in with code + PKCE.
 */
export async function exampleSession(accessTokenTtl = 2): Promise<ExampleSession> {
  const env = process.env
  if (env.REAUTH_ISSUER) {
    const missing = ['REAUTH_CLIENT_ID', 'REAUTH_REFRESH_TOKEN', 'REAUTH_API_URL'].filter(
      (name) => !env[name],
    )
    if (missing.length > 0) throw new Error(`REAUTH_ISSUER is set; also set ${missing.join(', ')}`)
    const api = new URL(env.REAUTH_API_URL as string)
    return {
      client: { issuer: env.REAUTH_ISSUER, clientId: env.REAUTH_CLIENT_ID as string },
      // No access token yet: expired at once, so the first request refreshes.
      tokens: {
        accessToken: 'none',
        tokenType: 'Bearer',
        refreshToken: env.REAUTH_REFRESH_TOKEN as string,
        expiresAt: 0,
      },
      api: api.origin,
      path: `${api.pathname}${api.search}`,
      describe: `${env.REAUTH_ISSUER} (from the environment)`,
      close: async () => {},
    }
  }
  const provider = await startProvider({ accessTokenTtl })
  const api = await startApi({ issuer: provider.issuer })
  return {
    client: clientOptions(provider.issuer),
    tokens: await signInOverHttp(provider.issuer),
    api: api.origin,
    path: '/orders',
    describe: `embedded oidc-provider at ${provider.issuer}, access tokens live ${accessTokenTtl} s`,
    async close() {
      await api.stop()
      await provider.stop()
    },
  }
}
