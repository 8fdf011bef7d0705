import { AsyncLocalStorage } from 'node:async_hooks'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { createRequire } from 'node:module'
import type { AddressInfo } from 'node:net'
import OAuth2Server from '@node-oauth/oauth2-server'
import type { InteropServer } from './types.js'

const REDIRECT_URI = 'http://127.0.0.1/callback'
const SCOPES = ['read', 'write']
const USER = { id: 'alice' }

interface StoredClient extends OAuth2Server.Client {
  secret: string | undefined
}

/**
 * A confidential client whose id and secret contain `-`, which RFC 6749 §2.3.1
 * form-encoding (as oauth4webapi does inside HTTP Basic) turns into `%2D`; this server
 * compares the Basic credentials without decoding them.
 */
export const CONFIDENTIAL_CLIENT = { clientId: 'nos-confidential', clientSecret: 'nos-secret' }

const CLIENTS: StoredClient[] = [
  {
    id: 'nos-public',
    secret: undefined,
    grants: ['authorization_code', 'refresh_token'],
    redirectUris: [REDIRECT_URI],
  },
  {
    id: CONFIDENTIAL_CLIENT.clientId,
    secret: CONFIDENTIAL_CLIENT.clientSecret,
    grants: ['authorization_code', 'refresh_token'],
    redirectUris: [REDIRECT_URI],
  },
]

function packageVersion(): string {
  const require = createRequire(import.meta.url)
  const path = require.resolve('@node-oauth/oauth2-server/package.json')
  return (JSON.parse(readFileSync(path, 'utf8')) as { version: string }).version
}

/**
 * An in-memory model for @node-oauth/oauth2-server with refresh token rotation and reuse
 * detection (OAuth 2.0 Security BCP §4.14.2): each refresh token belongs to a family (one
 * sign-in); presenting a spent one is counted and revokes the whole family.
 */
function createModel(options: { acceptedScopes: string[] }) {
  const accessTokens = new Map<string, OAuth2Server.Token>()
  const refreshTokens = new Map<string, OAuth2Server.RefreshToken & { family: string }>()
  const spent = new Map<string, string>()
  const codes = new Map<string, OAuth2Server.AuthorizationCode>()
  const counters = { refreshGrants: 0, reuse: 0 }
  /** Per token request: the family of the refresh token it exchanges, for the one it saves. */
  const grant = new AsyncLocalStorage<{ family?: string }>()

  function revokeFamily(family: string) {
    for (const [token, stored] of refreshTokens) {
      if (stored.family === family) refreshTokens.delete(token)
    }
  }

  const model: OAuth2Server.AuthorizationCodeModel & OAuth2Server.RefreshTokenModel = {
    async getClient(clientId, clientSecret) {
      const client = CLIENTS.find((c) => c.id === clientId)
      if (!client) return false
      // null: the authorize endpoint looking the client up; undefined: a public client's token request.
      if (clientSecret === null) return client
      if (client.secret === undefined) return clientSecret === undefined ? client : false
      return clientSecret === client.secret ? client : false
    },
    async validateScope(_user, _client, scope) {
      const requested = scope ?? []
      return requested.every((s) => options.acceptedScopes.includes(s)) ? requested : false
    },
    async saveAuthorizationCode(code, client, user) {
      const stored = { ...code, client, user }
      codes.set(code.authorizationCode, stored)
      return stored
    },
    async getAuthorizationCode(code) {
      return codes.get(code)
    },
    async revokeAuthorizationCode(code) {
      return codes.delete(code.authorizationCode)
    },
    async saveToken(token, client, user) {
      const stored = { ...token, client, user }
      accessTokens.set(token.accessToken, stored)
      if (token.refreshToken) {
        const family = grant.getStore()?.family ?? randomBytes(8).toString('hex')
        refreshTokens.set(token.refreshToken, {
          refreshToken: token.refreshToken,
          ...(token.refreshTokenExpiresAt
            ? { refreshTokenExpiresAt: token.refreshTokenExpiresAt }
            : {}),
          ...(token.scope ? { scope: token.scope } : {}),
          client,
          user,
          family,
        })
      }
      return stored
    },
    async getAccessToken(accessToken) {
      return accessTokens.get(accessToken)
    },
    async getRefreshToken(refreshToken) {
      const stored = refreshTokens.get(refreshToken)
      if (stored) return stored
      const family = spent.get(refreshToken)
      if (family !== undefined) {
        counters.reuse++
        revokeFamily(family)
      }
      return false
    },
    async revokeToken(token) {
      const stored = refreshTokens.get(token.refreshToken)
      if (!stored) return false
      refreshTokens.delete(token.refreshToken)
      spent.set(token.refreshToken, stored.family)
      const context = grant.getStore()
      if (context) context.family = stored.family
      counters.refreshGrants++
      return true
    },
  }
  return { model, counters, accessTokens, grant }
}

async function readBody(req: IncomingMessage): Promise<Record<string, string>> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  return Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString('utf8')))
}

function headersOf(req: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {}
  for (const [name, value] of Object.entries(req.headers)) {
    if (typeof value === 'string') headers[name] = value
  }
  return headers
}

function send(res: ServerResponse, response: OAuth2Server.Response) {
  const json = response.body !== undefined && Object.keys(response.body).length > 0
  res.writeHead(response.status ?? 200, {
    ...response.headers,
    ...(json ? { 'content-type': 'application/json;charset=UTF-8' } : {}),
  })
  res.end(json ? JSON.stringify(response.body) : undefined)
}

/**
 * Start @node-oauth/oauth2-server (npm) behind a small node:http server on 127.0.0.1:
 * `/authorize` (the user is already signed in and consents), `/token`, and RFC 8414
 * metadata at `/.well-known/oauth-authorization-server`. Plain OAuth 2.0: no OpenID Connect.
 */
export async function startNodeOAuth2Server(
  options: { acceptedScopes?: string[] } = {},
): Promise<InteropServer> {
  const { model, counters, accessTokens, grant } = createModel({
    acceptedScopes: options.acceptedScopes ?? SCOPES,
  })
  const oauth = new OAuth2Server({
    model,
    accessTokenLifetime: 3600,
    refreshTokenLifetime: 86_400,
    alwaysIssueNewRefreshToken: true,
    requireClientAuthentication: { refresh_token: false },
  })
  let issuer = ''

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url ?? '/', issuer)
    if (req.method === 'GET' && url.pathname === '/.well-known/oauth-authorization-server') {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(
        JSON.stringify({
          issuer,
          authorization_endpoint: `${issuer}/authorize`,
          token_endpoint: `${issuer}/token`,
          response_types_supported: ['code'],
          grant_types_supported: ['authorization_code', 'refresh_token'],
          token_endpoint_auth_methods_supported: [
            'none',
            'client_secret_basic',
            'client_secret_post',
          ],
          code_challenge_methods_supported: ['S256'],
          scopes_supported: SCOPES,
        }),
      )
      return
    }
    const request = new OAuth2Server.Request({
      method: req.method ?? 'GET',
      headers: headersOf(req),
      query: Object.fromEntries(url.searchParams),
      body: req.method === 'POST' ? await readBody(req) : {},
    })
    const response = new OAuth2Server.Response()
    if (url.pathname === '/authorize') {
      await oauth
        .authorize(request, response, { authenticateHandler: { handle: () => USER } })
        .catch(() => undefined)
      return send(res, response)
    }
    if (url.pathname === '/token' && req.method === 'POST') {
      await grant.run({}, () => oauth.token(request, response)).catch(() => undefined)
      return send(res, response)
    }
    res.writeHead(404).end()
  }

  const http = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500)
      res.end()
    })
  })
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
  issuer = `http://127.0.0.1:${(http.address() as AddressInfo).port}`

  return {
    name: '@node-oauth/oauth2-server',
    version: `${packageVersion()} (npm)`,
    issuer,
    signIn: {},
    redirectUri: REDIRECT_URI,
    clients: [
      { clientId: 'nos-public', clientAuth: 'none' },
      { ...CONFIDENTIAL_CLIENT, clientAuth: 'client_secret_basic', encodeBasicCredentials: false },
      { ...CONFIDENTIAL_CLIENT, clientAuth: 'client_secret_post' },
    ],
    openid: false,
    reuseRevokesFamily: true,
    async authorize(authorizationUrl) {
      const response = await fetch(authorizationUrl, { redirect: 'manual' })
      await response.arrayBuffer()
      const location = response.headers.get('location')
      if (response.status !== 302 || !location) {
        throw new Error(`authorize answered ${response.status} (${authorizationUrl.pathname})`)
      }
      return new URL(location, authorizationUrl)
    },
    async isActive(accessToken) {
      // The library's own bearer validation (authenticate), as a protected resource in the same process would.
      const request = new OAuth2Server.Request({
        method: 'GET',
        headers: { authorization: `Bearer ${accessToken}` },
        query: {},
      })
      return oauth.authenticate(request, new OAuth2Server.Response()).then(
        () => true,
        () => false,
      )
    },
    async expireAccessToken(accessToken) {
      const stored = accessTokens.get(accessToken)
      if (!stored) throw new Error('unknown access token')
      stored.accessTokenExpiresAt = new Date(Date.now() - 1000)
    },
    async counters() {
      return { ...counters }
    },
    stop: () =>
      new Promise<void>((resolve) => {
        http.closeAllConnections()
        http.close(() => resolve())
      }),
  }
}
