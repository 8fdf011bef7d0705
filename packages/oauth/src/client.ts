import { ReauthOptionsError } from '@reauth/core'
import * as oauth from 'oauth4webapi'
import { discover } from './discovery.js'

/** How the client authenticates at the token endpoint. */
export type ClientAuthMethod = 'none' | 'client_secret_basic' | 'client_secret_post'

/** The client and the authorization server it talks to. */
export interface OAuthClientOptions {
  /** The issuer, discovered on first use. Give `issuer` or `server`. */
  issuer?: string | URL
  /** Authorization server metadata, e.g. from {@link discover}. */
  server?: oauth.AuthorizationServer
  /** The client's `client_id`. */
  clientId: string
  /** The client secret, for confidential clients. */
  clientSecret?: string
  /** Default: `client_secret_basic` with a secret, `none` (public client) without. */
  clientAuth?: ClientAuthMethod
  /** The `fetch` used for every request. Default: `globalThis.fetch` at call time. */
  fetch?: typeof fetch
  /** Allow `http:` URLs (loopback development and tests only). */
  allowInsecureRequests?: boolean
}

/** Everything the grants need, resolved once. */
export interface ResolvedClient {
  server(signal?: AbortSignal): Promise<oauth.AuthorizationServer>
  client: oauth.Client
  auth: oauth.ClientAuth
  http(signal?: AbortSignal): oauth.HttpRequestOptions<'POST', URLSearchParams>
}

/** Validate the client options and prepare the oauth4webapi objects. */
export function resolveClient(options: OAuthClientOptions): ResolvedClient {
  if (typeof options !== 'object' || options === null) {
    throw new ReauthOptionsError('the OAuth client options must be an object')
  }
  if (typeof options.clientId !== 'string' || options.clientId === '') {
    throw new ReauthOptionsError('"clientId" must be a non-empty string')
  }
  if (options.issuer === undefined && options.server === undefined) {
    throw new ReauthOptionsError('"issuer" or "server" is required')
  }
  if (options.clientSecret !== undefined && typeof options.clientSecret !== 'string') {
    throw new ReauthOptionsError('"clientSecret" must be a string')
  }
  if (options.fetch !== undefined && typeof options.fetch !== 'function') {
    throw new ReauthOptionsError('"fetch" must be a function')
  }
  const method = options.clientAuth ?? (options.clientSecret ? 'client_secret_basic' : 'none')
  let auth: oauth.ClientAuth
  if (method === 'none') auth = oauth.None()
  else if (method === 'client_secret_basic' || method === 'client_secret_post') {
    if (!options.clientSecret) {
      throw new ReauthOptionsError(`"clientSecret" is required for "clientAuth": "${method}"`)
    }
    auth =
      method === 'client_secret_basic'
        ? oauth.ClientSecretBasic(options.clientSecret)
        : oauth.ClientSecretPost(options.clientSecret)
  } else {
    throw new ReauthOptionsError(
      '"clientAuth" must be "none", "client_secret_basic" or "client_secret_post"',
    )
  }
  const http = (signal?: AbortSignal): oauth.HttpRequestOptions<'POST', URLSearchParams> => ({
    ...(signal ? { signal } : {}),
    ...(options.allowInsecureRequests ? { [oauth.allowInsecureRequests]: true } : {}),
    [oauth.customFetch]: (url, init) =>
      (options.fetch ?? globalThis.fetch)(url, init as RequestInit),
  })
  let server: Promise<oauth.AuthorizationServer> | undefined = options.server
    ? Promise.resolve(options.server)
    : undefined
  return {
    client: { client_id: options.clientId },
    auth,
    http,
    server(signal) {
      if (!server) {
        const discovering = discover(options.issuer as string | URL, {
          ...(options.fetch ? { fetch: options.fetch } : {}),
          ...(signal ? { signal } : {}),
          ...(options.allowInsecureRequests ? { allowInsecureRequests: true } : {}),
        })
        server = discovering
        // A failed discovery is tried again on the next use.
        discovering.catch(() => {
          if (server === discovering) server = undefined
        })
      }
      return server
    },
  }
}
