import { ReauthOptionsError } from '@reauth/core'
import * as oauth from 'oauth4webapi'
import { assertSecureUrl, discover } from './discovery.js'
import { DiscoveryError } from './errors.js'

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
  /**
   * `client_secret_basic` only. Default `true`: the client id and secret are
   * `application/x-www-form-urlencoded` before they are put in the `Authorization: Basic`
   * header, as RFC 6749 §2.3.1 requires (`my-app` is sent as `my%2Dapp`). Set `false` for a
   * server that does not decode them (it answers `invalid_client` for an id or secret with
   * `-`, `.`, `_`, `~`, a space or non-ASCII characters): they are then sent as they are
   * (UTF-8, RFC 7617), and the client id must not contain `:`.
   */
  encodeBasicCredentials?: boolean
  /** The `fetch` used for every request. Default: `globalThis.fetch` at call time. */
  fetch?: typeof fetch
  /**
   * Allow `http:` URLs: the issuer, discovery redirects and the endpoints (loopback
   * development and tests only). Without it an `http:` issuer or endpoint is a
   * `ReauthOptionsError`.
   */
  allowInsecureRequests?: boolean
}

/** Everything the grants need, resolved once. */
export interface ResolvedClient {
  /** The metadata: given, or discovered once (a failed discovery is tried again next time). */
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
  const insecure = options.allowInsecureRequests
  if (insecure !== undefined && typeof insecure !== 'boolean') {
    throw new ReauthOptionsError('"allowInsecureRequests" must be a boolean')
  }
  if (options.server !== undefined) {
    if (typeof options.server !== 'object' || options.server === null) {
      throw new ReauthOptionsError('"server" must be authorization server metadata (an object)')
    }
    if (typeof options.server.issuer !== 'string' || !URL.canParse(options.server.issuer)) {
      throw new ReauthOptionsError('"server.issuer" must be an absolute URL')
    }
    checkEndpoints(options.server, insecure, (message) => new ReauthOptionsError(message))
  } else {
    let issuer: URL
    try {
      issuer = new URL(options.issuer as string | URL)
    } catch {
      throw new ReauthOptionsError('"issuer" must be an absolute URL')
    }
    assertSecureUrl(issuer, '"issuer"', insecure)
  }
  if (
    options.encodeBasicCredentials !== undefined &&
    typeof options.encodeBasicCredentials !== 'boolean'
  ) {
    throw new ReauthOptionsError('"encodeBasicCredentials" must be a boolean')
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
    if (method === 'client_secret_post') auth = oauth.ClientSecretPost(options.clientSecret)
    else if (options.encodeBasicCredentials === false) {
      if (options.clientId.includes(':')) {
        throw new ReauthOptionsError(
          '"clientId" contains ":", which HTTP Basic cannot carry unencoded; keep "encodeBasicCredentials" true',
        )
      }
      auth = rawClientSecretBasic(options.clientSecret)
    } else auth = oauth.ClientSecretBasic(options.clientSecret)
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
          ...(insecure ? { allowInsecureRequests: true } : {}),
        }).then((metadata) => {
          checkEndpoints(
            metadata,
            insecure,
            (message) =>
              new DiscoveryError(`The discovered metadata: ${message}`, { retryable: false }),
          )
          return metadata
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

/** `token_endpoint` (and `authorization_endpoint`, when present) are usable URLs. */
function checkEndpoints(
  server: oauth.AuthorizationServer,
  insecure: boolean | undefined,
  fail: (message: string) => Error,
): void {
  for (const name of ['token_endpoint', 'authorization_endpoint'] as const) {
    const value = server[name]
    if (value === undefined && name === 'authorization_endpoint') continue
    if (typeof value !== 'string' || !URL.canParse(value)) {
      throw fail(`"server.${name}" must be an absolute URL`)
    }
    try {
      assertSecureUrl(new URL(value), `"server.${name}"`, insecure)
    } catch (error) {
      throw fail((error as Error).message)
    }
  }
}

/**
 * HTTP Basic with the client id and secret as they are (UTF-8, RFC 7617), for servers that
 * do not decode the RFC 6749 §2.3.1 form encoding.
 */
function rawClientSecretBasic(clientSecret: string): oauth.ClientAuth {
  return (_server, client, _body, headers) => {
    const bytes = new TextEncoder().encode(`${client.client_id}:${clientSecret}`)
    let binary = ''
    for (const byte of bytes) binary += String.fromCharCode(byte)
    headers.set('authorization', `Basic ${btoa(binary)}`)
  }
}
