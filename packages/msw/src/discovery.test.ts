import { ReauthOptionsError } from '@reauth/core'
import { setupServer } from 'msw/node'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createAuthServer } from './auth-server.js'
import { pkceChallenge } from './pkce.js'

const auth = createAuthServer()
const confidential = createAuthServer({
  issuer: 'https://login.example.test/tenant-a/',
  clientSecret: 's3cret',
})
const server = setupServer(...auth.handlers, ...confidential.handlers)

beforeAll(() => server.listen({ onUnhandledRequest: 'error' }))
afterEach(() => {
  auth.reset()
  confidential.reset()
})
afterAll(() => server.close())

const verifier = 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk'

describe('discovery', () => {
  it.each([
    'https://auth.reauth.test/.well-known/openid-configuration',
    'https://auth.reauth.test/.well-known/oauth-authorization-server',
  ])('serves %s', async (url) => {
    const response = await fetch(url)
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({
      issuer: 'https://auth.reauth.test',
      authorization_endpoint: 'https://auth.reauth.test/oauth/authorize',
      token_endpoint: 'https://auth.reauth.test/oauth/token',
      response_types_supported: ['code'],
      grant_types_supported: ['authorization_code', 'refresh_token'],
      code_challenge_methods_supported: ['S256'],
      token_endpoint_auth_methods_supported: ['none'],
      scopes_supported: ['openid', 'offline_access'],
      revocation_endpoint: 'https://auth.reauth.test/oauth/revoke',
      revocation_endpoint_auth_methods_supported: ['none'],
    })
  })

  it('exposes the issuer and endpoints', () => {
    expect(auth.issuer).toBe('https://auth.reauth.test')
    expect(auth.tokenEndpoint).toBe('https://auth.reauth.test/oauth/token')
    expect(auth.authorizationEndpoint).toBe('https://auth.reauth.test/oauth/authorize')
    expect(auth.revocationEndpoint).toBe('https://auth.reauth.test/oauth/revoke')
  })

  it('puts the well-known segment where OIDC and RFC 8414 say for an issuer with a path', async () => {
    expect(confidential.issuer).toBe('https://login.example.test/tenant-a')
    const oidc = await fetch(
      'https://login.example.test/tenant-a/.well-known/openid-configuration',
    ).then((r) => r.json())
    const oauth = await fetch(
      'https://login.example.test/.well-known/oauth-authorization-server/tenant-a',
    ).then((r) => r.json())
    expect(oidc).toEqual(oauth)
    expect(oidc).toMatchObject({
      issuer: 'https://login.example.test/tenant-a',
      token_endpoint: 'https://login.example.test/tenant-a/oauth/token',
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
    })
  })
})

describe('authorization endpoint', () => {
  it('redirects a valid PKCE request back with a code, state and iss', async () => {
    const url = new URL(auth.authorizationEndpoint)
    url.search = new URLSearchParams({
      response_type: 'code',
      client_id: 'reauth-test',
      redirect_uri: 'https://app.example.test/cb',
      state: 'xyz',
      scope: 'openid offline_access',
      code_challenge: await pkceChallenge(verifier),
      code_challenge_method: 'S256',
    }).toString()
    const response = await fetch(url, { redirect: 'manual' })
    expect(response.status).toBe(302)
    const back = new URL(response.headers.get('location') ?? '')
    expect(back.origin + back.pathname).toBe('https://app.example.test/cb')
    expect(back.searchParams.get('state')).toBe('xyz')
    expect(back.searchParams.get('iss')).toBe('https://auth.reauth.test')

    const exchange = await fetch(auth.tokenEndpoint, {
      method: 'POST',
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code: back.searchParams.get('code') ?? '',
        code_verifier: verifier,
        redirect_uri: 'https://app.example.test/cb',
      }),
    })
    expect(exchange.status).toBe(200)
    expect(auth.counters.codeGrants).toBe(1)
  })

  it('redirects with an error when PKCE is missing', async () => {
    const url = new URL(auth.authorizationEndpoint)
    url.search = new URLSearchParams({
      response_type: 'code',
      client_id: 'reauth-test',
      redirect_uri: 'https://app.example.test/cb',
    }).toString()
    const response = await fetch(url, { redirect: 'manual' })
    const back = new URL(response.headers.get('location') ?? '')
    expect(back.searchParams.get('error')).toBe('invalid_request')
    expect(back.searchParams.has('code')).toBe(false)
  })

  it('answers 400 (no redirect) for an unknown client', async () => {
    const url = new URL(auth.authorizationEndpoint)
    url.search = new URLSearchParams({
      response_type: 'code',
      client_id: 'someone-else',
      redirect_uri: 'https://evil.example.test/cb',
    }).toString()
    const response = await fetch(url, { redirect: 'manual' })
    expect(response.status).toBe(400)
    expect(response.headers.get('location')).toBeNull()
  })
})

describe('options', () => {
  it.each([
    [{ issuer: 'not a url' }, '"issuer" must be an absolute URL'],
    [{ issuer: 'ftp://x.test' }, '"issuer" must be an http(s) URL'],
    [{ issuer: 'https://x.test/?a=1' }, '"issuer" must not have a query or fragment'],
    [{ clientId: '' }, '"clientId" must not be empty'],
    [{ accessTokenTtl: -1 }, '"accessTokenTtl" must be a non-negative number of seconds'],
    [{ rotateRefreshTokens: 'yes' }, '"rotateRefreshTokens" must be a boolean'],
  ])('rejects %o', (options, message) => {
    expect(() => createAuthServer(options as never)).toThrow(
      new ReauthOptionsError(`createAuthServer(): ${message}`),
    )
  })
})
