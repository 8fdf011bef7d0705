/** Interop: @node-oauth/oauth2-server (npm), a plain OAuth 2.0 server with RFC 8414 metadata. */
import { isOAuthError, isReauthOptionsError, isRefreshError } from '@reauth/core'
import { beginSignIn, createRefreshGrant, discover } from '@reauth/oauth'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CONFIDENTIAL_CLIENT, startNodeOAuth2Server } from './servers/node-oauth2-server.js'
import type { InteropServer } from './servers/types.js'
import { interopSuite, signInAt } from './suite.js'

describe('interop: @node-oauth/oauth2-server', () => {
  interopSuite({
    start: () => startNodeOAuth2Server(),
    clientAuth: ['none', 'client_secret_basic', 'client_secret_post'],
  })
})

/** What @reauth/oauth does differently for this plain OAuth 2.0 server (README, Interoperability). */
describe('@node-oauth/oauth2-server: what the client needs', () => {
  const servers: InteropServer[] = []
  async function start(options: Parameters<typeof startNodeOAuth2Server>[0] = {}) {
    const server = await startNodeOAuth2Server(options)
    servers.push(server)
    return server
  }
  let server: InteropServer
  beforeAll(async () => {
    server = await start()
  })
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()))
  })

  it('a plain OAuth 2.0 server: no openid, no nonce, no offline_access (not in scopes_supported), no prompt', async () => {
    const request = await beginSignIn({
      issuer: server.issuer,
      clientId: 'nos-public',
      redirectUri: server.redirectUri,
      allowInsecureRequests: true,
    })
    expect(request.url.searchParams.has('scope')).toBe(false)
    expect(request.url.searchParams.has('nonce')).toBe(false)
    expect(request.url.searchParams.has('prompt')).toBe(false)
    expect(request.nonce).toBeUndefined()
  })

  it('asking it for openid anyway: the code is redeemed, then the missing ID token fails the sign-in', async () => {
    const lenient = await start({ acceptedScopes: ['read', 'openid'] })
    const failure = await signInAt(lenient, {
      issuer: lenient.issuer,
      clientId: 'nos-public',
      redirectUri: lenient.redirectUri,
      scope: 'openid',
      allowInsecureRequests: true,
    }).catch((error: unknown) => error)
    expect(isRefreshError(failure) && failure.field).toBe('id_token')
  })

  it('client_secret_basic: the RFC 6749 §2.3.1 encoding by default → invalid_client; encodeBasicCredentials: false works', async () => {
    const tokens = await signInAt(server, {
      issuer: server.issuer,
      ...CONFIDENTIAL_CLIENT,
      clientAuth: 'client_secret_post',
      redirectUri: server.redirectUri,
      allowInsecureRequests: true,
    })
    const options = {
      issuer: server.issuer,
      ...CONFIDENTIAL_CLIENT,
      clientAuth: 'client_secret_basic' as const,
      allowInsecureRequests: true,
    }
    const context = { tokens, signal: new AbortController().signal, startedAt: Date.now() }
    const failure = await createRefreshGrant(options)(context).catch((error: unknown) => error)
    expect(isOAuthError(failure) && failure.error).toBe('invalid_client')
    const refresh = createRefreshGrant({ ...options, encodeBasicCredentials: false })
    expect(typeof (await refresh(context)).accessToken).toBe('string')
  })

  it('an http issuer without allowInsecureRequests is an options error that names the option', async () => {
    const failure = await discover(server.issuer).catch((error: unknown) => error)
    expect(isReauthOptionsError(failure)).toBe(true)
    expect((failure as Error).message).toMatch(/"allowInsecureRequests": true/)
  })
})
