/**
 * Client credentials (RFC 6749 §4.4), revocation (RFC 7009) and resource indicators (RFC 8707)
 * in the fake authorization server.
 */
import { setupServer } from 'msw/node'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createAuthServer } from './auth-server.js'

const ORDERS = 'https://orders.example.test'
const BILLING = 'https://billing.example.test'
const confidential = createAuthServer({
  issuer: 'https://sts.example.test',
  clientId: 'billing-job',
  clientSecret: 's3cret-value',
  accessTokenTtl: 30,
})
const publicServer = createAuthServer()
const server = setupServer(
  ...confidential.handlers,
  ...publicServer.handlers,
  confidential.protect('GET', `${ORDERS}/orders`, undefined, { resource: ORDERS }),
  confidential.protect('GET', `${BILLING}/invoices`, undefined, { resource: BILLING }),
  confidential.protect('GET', 'https://any.example.test/me'),
  publicServer.protect('GET', 'https://public.example.test/me'),
)

beforeAll(() => server.listen({ onUnhandledRequest: 'error' }))
afterEach(() => {
  confidential.reset()
  publicServer.reset()
})
afterAll(() => server.close())

const basic = `Basic ${btoa('billing-job:s3cret-value')}`

function token(
  params: Record<string, string> | URLSearchParams,
  auth = confidential,
  authorization: string | null = basic,
) {
  return fetch(auth.tokenEndpoint, {
    method: 'POST',
    headers: authorization === null ? {} : { authorization },
    body: new URLSearchParams(params),
  })
}

function revoke(params: Record<string, string>, authorization: string | null = basic) {
  return fetch(confidential.revocationEndpoint, {
    method: 'POST',
    headers: authorization === null ? {} : { authorization },
    body: new URLSearchParams(params),
  })
}

function call(url: string, accessToken: string) {
  return fetch(url, { headers: { authorization: `Bearer ${accessToken}` } })
}

interface TokenBody {
  access_token: string
  refresh_token?: string
  expires_in: number
  scope?: string
  error?: string
}

describe('client_credentials grant', () => {
  it('issues an access token and no refresh token to the authenticated client', async () => {
    const response = await token({ grant_type: 'client_credentials', scope: 'invoices:read' })
    expect(response.status).toBe(200)
    const body = (await response.json()) as TokenBody
    expect(body).toMatchObject({ token_type: 'Bearer', expires_in: 30, scope: 'invoices:read' })
    expect(body.refresh_token).toBeUndefined()
    expect((await call('https://any.example.test/me', body.access_token)).status).toBe(200)
    expect(confidential.counters).toMatchObject({
      tokenRequests: 1,
      clientCredentialsGrants: 1,
      grants: 0,
      failures: 0,
    })
  })

  it('requires client authentication: a wrong secret is 401 invalid_client', async () => {
    const response = await token(
      { grant_type: 'client_credentials' },
      confidential,
      `Basic ${btoa('billing-job:wrong')}`,
    )
    expect(response.status).toBe(401)
    expect(await response.json()).toMatchObject({ error: 'invalid_client' })
    const anonymous = await token({ grant_type: 'client_credentials' }, confidential, null)
    expect(anonymous.status).toBe(401)
    expect(confidential.counters).toMatchObject({ clientCredentialsGrants: 0, failures: 2 })
  })

  it('a public client may not use it: unauthorized_client', async () => {
    const response = await token({ grant_type: 'client_credentials' }, publicServer, null)
    expect(response.status).toBe(400)
    expect(await response.json()).toMatchObject({ error: 'unauthorized_client' })
    expect(publicServer.counters.clientCredentialsGrants).toBe(0)
  })

  it('is in the metadata of a confidential server only, with the revocation endpoint', async () => {
    const meta = await (
      await fetch(`${confidential.issuer}/.well-known/openid-configuration`)
    ).json()
    expect(meta.grant_types_supported).toContain('client_credentials')
    expect(meta.revocation_endpoint).toBe(`${confidential.issuer}/oauth/revoke`)
    const open = await (
      await fetch(`${publicServer.issuer}/.well-known/openid-configuration`)
    ).json()
    expect(open.grant_types_supported).not.toContain('client_credentials')
    expect(open.revocation_endpoint).toBe(publicServer.revocationEndpoint)
  })

  it('injected outcomes apply to it as to any token request', async () => {
    confidential.enqueue({ type: 'oauth-error', error: 'invalid_client' })
    const response = await token({ grant_type: 'client_credentials' })
    expect(response.status).toBe(401)
    expect(confidential.counters.clientCredentialsGrants).toBe(0)
  })
})

describe('revocation endpoint (RFC 7009)', () => {
  it('a revoked refresh token gets invalid_grant afterwards, and its access tokens 401', async () => {
    const tokens = confidential.signIn()
    const response = await revoke({
      token: tokens.refreshToken as string,
      token_type_hint: 'refresh_token',
    })
    expect(response.status).toBe(200)
    const after = await token({ grant_type: 'refresh_token', refresh_token: tokens.refreshToken! })
    expect(after.status).toBe(400)
    expect(await after.json()).toMatchObject({ error: 'invalid_grant' })
    const api = await call('https://any.example.test/me', tokens.accessToken)
    expect(api.status).toBe(401)
    expect(api.headers.get('www-authenticate')).toMatch(/error="invalid_token"/)
    expect(confidential.counters.revocations).toBe(1)
    // a revocation is not a reuse
    expect(confidential.counters.reuseDetected).toBe(0)
  })

  it('a revoked access token is refused (401 invalid_token); its refresh token still works', async () => {
    const tokens = confidential.signIn()
    expect((await call('https://any.example.test/me', tokens.accessToken)).status).toBe(200)
    await revoke({ token: tokens.accessToken, token_type_hint: 'access_token' })
    const api = await call('https://any.example.test/me', tokens.accessToken)
    expect(api.status).toBe(401)
    expect(await api.json()).toMatchObject({
      error: 'invalid_token',
      error_description: 'The access token was revoked',
    })
    const refreshed = await token({
      grant_type: 'refresh_token',
      refresh_token: tokens.refreshToken!,
    })
    expect(refreshed.status).toBe(200)
  })

  it('an unknown token is answered 200, as RFC 7009 §2.2 says', async () => {
    const response = await revoke({ token: 'never-issued' })
    expect(response.status).toBe(200)
    expect(confidential.counters.revocations).toBe(1)
  })

  it('authenticates the client as the token endpoint does, and needs a token', async () => {
    const tokens = confidential.signIn()
    const wrong = await revoke({ token: tokens.refreshToken! }, `Basic ${btoa('billing-job:nope')}`)
    expect(wrong.status).toBe(401)
    expect(await wrong.json()).toMatchObject({ error: 'invalid_client' })
    // not revoked
    const refreshed = await token({
      grant_type: 'refresh_token',
      refresh_token: tokens.refreshToken!,
    })
    expect(refreshed.status).toBe(200)
    const missing = await revoke({ token_type_hint: 'refresh_token' })
    expect(missing.status).toBe(400)
    expect(await missing.json()).toMatchObject({ error: 'invalid_request' })
    expect(confidential.counters.revocations).toBe(0)
  })
})

describe('resource indicators (RFC 8707)', () => {
  it('a token issued for a resource is accepted by that API and refused by another', async () => {
    const body = (await (
      await token({ grant_type: 'client_credentials', resource: ORDERS })
    ).json()) as TokenBody
    expect((await call(`${ORDERS}/orders`, body.access_token)).status).toBe(200)
    const other = await call(`${BILLING}/invoices`, body.access_token)
    expect(other.status).toBe(401)
    expect(await other.json()).toMatchObject({
      error: 'invalid_token',
      error_description: 'The access token is not for this resource (audience)',
    })
    expect(confidential.counters.resourceGrants).toEqual({ [ORDERS]: 1 })
  })

  it('a token without an audience is refused by an API that names its resource', async () => {
    const body = (await (await token({ grant_type: 'client_credentials' })).json()) as TokenBody
    expect((await call(`${ORDERS}/orders`, body.access_token)).status).toBe(401)
    expect((await call('https://any.example.test/me', body.access_token)).status).toBe(200)
  })

  it('the resolver sees the audience', async () => {
    const seen: Array<string | undefined> = []
    server.use(
      confidential.protect(
        'GET',
        'https://seen.example.test/x',
        ({ token: accepted }) => {
          seen.push(accepted.audience)
          return new Response(null, { status: 204 })
        },
        { resource: ORDERS },
      ),
    )
    const body = (await (
      await token({ grant_type: 'client_credentials', resource: ORDERS })
    ).json()) as TokenBody
    await call('https://seen.example.test/x', body.access_token)
    expect(seen).toEqual([ORDERS])
    server.resetHandlers()
  })

  it('one rotating refresh token serves several resources; a spent one is reuse', async () => {
    const tokens = confidential.signIn({ resources: [ORDERS, BILLING] })
    const first = (await (
      await token({
        grant_type: 'refresh_token',
        refresh_token: tokens.refreshToken!,
        resource: ORDERS,
      })
    ).json()) as TokenBody
    const second = (await (
      await token({
        grant_type: 'refresh_token',
        refresh_token: first.refresh_token!,
        resource: BILLING,
      })
    ).json()) as TokenBody
    expect((await call(`${ORDERS}/orders`, first.access_token)).status).toBe(200)
    expect((await call(`${BILLING}/invoices`, second.access_token)).status).toBe(200)
    expect((await call(`${BILLING}/invoices`, first.access_token)).status).toBe(401)
    expect(confidential.counters.resourceGrants).toEqual({ [ORDERS]: 1, [BILLING]: 1 })
    expect(confidential.counters.grants).toBe(2)
    // A grant for the other resource presenting the spent token: reuse detected, family revoked.
    const reused = await token({
      grant_type: 'refresh_token',
      refresh_token: first.refresh_token!,
      resource: ORDERS,
    })
    expect(await reused.json()).toMatchObject({ error: 'invalid_grant' })
    expect(confidential.counters.reuseDetected).toBe(1)
    expect((await call(`${BILLING}/invoices`, second.access_token)).status).toBe(401)
  })

  it('invalid_target: a resource the grant was not authorized for, two resources, a relative one', async () => {
    const tokens = confidential.signIn({ resources: [ORDERS] })
    const refresh = (resource: string | string[]) => {
      const params = new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: tokens.refreshToken!,
      })
      for (const value of [resource].flat()) params.append('resource', value)
      return token(params)
    }
    for (const resource of [BILLING, [ORDERS, BILLING], '/orders', `${ORDERS}#x`]) {
      const response = await refresh(resource)
      expect(response.status).toBe(400)
      expect(await response.json()).toMatchObject({ error: 'invalid_target' })
    }
    // the refresh token was not spent by the refused requests
    expect((await refresh(ORDERS)).status).toBe(200)
    expect(confidential.counters.reuseDetected).toBe(0)
  })

  it('checks the resources options', () => {
    expect(() => confidential.signIn({ resources: ['relative'] })).toThrow(/"resources"/)
    expect(() => confidential.protect('GET', '/x', undefined, { resource: 'nope' })).toThrow(
      /"resource"/,
    )
  })

  it('reset() zeroes the new counters in place', async () => {
    await token({ grant_type: 'client_credentials', resource: ORDERS })
    await revoke({ token: 'x' })
    const counters = confidential.counters
    confidential.reset()
    expect(counters).toMatchObject({
      clientCredentialsGrants: 0,
      revocations: 0,
      resourceGrants: {},
    })
  })
})
