import type { ClientAuthMethod, SignInOptions } from '@reauth/oauth'

/** A client registered at an interop server, with the one auth method a test uses for it. */
export interface InteropClient {
  clientId: string
  clientSecret?: string
  clientAuth: ClientAuthMethod
  /** `false` for a server that does not form-decode HTTP Basic credentials. */
  encodeBasicCredentials?: boolean
}

/** What the server counted at its token endpoint, since it started. */
export interface ServerCounters {
  /** Successful refresh_token grants. */
  refreshGrants: number
  /** A spent (rotated-away) refresh token presented again. */
  reuse: number
}

/** An authorization server the interop suite started on 127.0.0.1 and will stop. */
export interface InteropServer {
  /** Name and version, as in the README's compatibility table. */
  readonly name: string
  readonly version: string
  readonly issuer: string
  /** Sign-in options this server needs beyond the defaults (README: "what it needed"). */
  readonly signIn: Pick<SignInOptions, 'offlineAccess'>
  readonly redirectUri: string
  /** One client per client authentication method the server supports. */
  readonly clients: readonly InteropClient[]
  /** An OpenID Provider: sign-in (scope `openid`) returns an id_token, checked by oauth4webapi. */
  readonly openid: boolean
  /** Does presenting a spent refresh token also revoke the refresh token that replaced it? */
  readonly reuseRevokesFamily: boolean
  /** Drive the authorization endpoint as the signed-in, consenting user; the redirect back, with `code`. */
  authorize(url: URL): Promise<URL>
  /** Ask the server whether an access token is active (introspection or its own validation). */
  isActive(accessToken: string): Promise<boolean>
  /** Expire an access token at the server, before the client's clock says so (its refresh token stays valid). */
  expireAccessToken(accessToken: string): Promise<void>
  counters(): Promise<ServerCounters>
  stop(): Promise<void>
}
