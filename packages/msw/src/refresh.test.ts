import { ReauthOptionsError } from '@reauth/core'
import { setupServer } from 'msw/node'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { createAuthServer } from './auth-server.js'

const API = 'https://api.example.test/me'
const auth = createAuthServer()
const server = setupServer(...auth.handlers, auth.protect('GET', API))

beforeAll(() => server.listen({ onUnhandledRequest: 'error' }))
afterEach(() => {
  server.resetHandlers()
  auth.reset()
  vi.useRealTimers()
})
afterAll(() => server.close())

function refresh(refreshToken: string | undefined, extra: Record<string, string> = {}) {
  return fetch(auth.tokenEndpoint, {
    method: 'POST',
    body: new URLSearchParams({
      grant_type: 'refresh_token',
      refresh_token: refreshToken ?? '',
      ...extra,
    }),
  })
}

function callApi(accessToken: string, url = API) {
  return fetch(url, { headers: { Authorization: `Bearer ${accessToken}` } })
}

interface TokenBody {
  access_token: string
  token_type: string
  expires_in: number
  refresh_token?: string
  scope?: string
}

describe('signIn', () => {
  it('mints a usable token family without counting a grant', async () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    vi.setSystemTime(1_700_000_000_000)
    const tokens = auth.signIn()
    expect(tokens).toEqual({
      accessToken: expect.any(String),
      tokenType: 'Bearer',
      refreshToken: expect.any(String),
      expiresAt: 1_700_000_060_000,
      issuedAt: 1_700_000_000_000,
      scope: 'openid offline_access',
    })
    expect((await callApi(tokens.accessToken)).status).toBe(200)
    expect(auth.counters).toMatchObject({ tokenRequests: 0, grants: 0 })
  })

  it('applies its accessTokenTtl to the family, refreshes included', async () => {
    const tokens = auth.signIn({ scope: 'read', accessTokenTtl: 5 })
    expect(tokens.expiresAt! - tokens.issuedAt!).toBe(5000)
    expect(tokens.scope).toBe('read')
    const body = (await (await refresh(tokens.refreshToken)).json()) as TokenBody
    expect(body.expires_in).toBe(5)
  })
})

describe('refresh_token grant with rotation (default)', () => {
  it('returns a new token set per RFC 6749 §5.1 with no-store headers', async () => {
    const tokens = auth.signIn()
    const response = await refresh(tokens.refreshToken)
    expect(response.status).toBe(200)
    expect(response.headers.get('cache-control')).toBe('no-store')
    expect(response.headers.get('pragma')).toBe('no-cache')
    expect(response.headers.get('content-type')).toMatch(/^application\/json/)
    const body = (await response.json()) as TokenBody
    expect(body).toEqual({
      access_token: expect.any(String),
      token_type: 'Bearer',
      expires_in: 60,
      refresh_token: expect.any(String),
      scope: 'openid offline_access',
    })
    expect(body.access_token).not.toBe(tokens.accessToken)
    expect(body.refresh_token).not.toBe(tokens.refreshToken)
    expect((await callApi(body.access_token)).status).toBe(200)
    expect(auth.counters).toMatchObject({ tokenRequests: 1, grants: 1, failures: 0 })
    expect(auth.presentedRefreshTokens).toEqual([tokens.refreshToken])
  })

  it('detects reuse of a rotated token and revokes the whole family', async () => {
    const tokens = auth.signIn()
    const first = (await (await refresh(tokens.refreshToken)).json()) as TokenBody

    const reuse = await refresh(tokens.refreshToken)
    expect(reuse.status).toBe(400)
    expect(reuse.headers.get('cache-control')).toBe('no-store')
    const error = (await reuse.json()) as { error: string; error_description: string }
    expect(error.error).toBe('invalid_grant')
    expect(error.error_description).not.toContain(tokens.refreshToken!)
    expect(auth.counters.reuseDetected).toBe(1)

    // Everything the family issued is dead: the rotated-in refresh token and both access tokens.
    expect((await refresh(first.refresh_token)).status).toBe(400)
    expect((await callApi(first.access_token)).status).toBe(401)
    expect((await callApi(tokens.accessToken)).status).toBe(401)
    expect(auth.counters).toMatchObject({ grants: 1, failures: 2, tokenRequests: 3 })
    expect(auth.presentedRefreshTokens).toEqual([
      tokens.refreshToken,
      tokens.refreshToken,
      first.refresh_token,
    ])
  })

  it('leaves other families alone when one is revoked for reuse', async () => {
    const mine = auth.signIn()
    const theirs = auth.signIn()
    await refresh(mine.refreshToken)
    await refresh(mine.refreshToken)
    expect((await callApi(theirs.accessToken)).status).toBe(200)
    expect((await refresh(theirs.refreshToken)).status).toBe(200)
  })

  it('with reuseDetection: false answers invalid_grant but keeps the family', async () => {
    const lenient = createAuthServer({ issuer: 'https://lenient.test', reuseDetection: false })
    server.use(...lenient.handlers)
    const tokens = lenient.signIn()
    const body = new URLSearchParams({
      grant_type: 'refresh_token',
      refresh_token: tokens.refreshToken!,
    })
    const first = await fetch(lenient.tokenEndpoint, { method: 'POST', body })
    const next = (await first.json()) as TokenBody
    const reuse = await fetch(lenient.tokenEndpoint, { method: 'POST', body })
    expect(reuse.status).toBe(400)
    expect(lenient.counters.reuseDetected).toBe(1)
    const again = await fetch(lenient.tokenEndpoint, {
      method: 'POST',
      body: new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: next.refresh_token!,
      }),
    })
    expect(again.status).toBe(200)
  })
})

describe('refresh_token grant without rotation', () => {
  it('omits refresh_token and keeps the old one valid (RFC 6749 §6)', async () => {
    const fixed = createAuthServer({ issuer: 'https://fixed.test', rotateRefreshTokens: false })
    server.use(...fixed.handlers)
    const tokens = fixed.signIn()
    const body = new URLSearchParams({
      grant_type: 'refresh_token',
      refresh_token: tokens.refreshToken!,
    })
    for (let i = 0; i < 3; i++) {
      const response = await fetch(fixed.tokenEndpoint, { method: 'POST', body })
      expect(response.status).toBe(200)
      const json = (await response.json()) as TokenBody
      expect(json).not.toHaveProperty('refresh_token')
      expect(json.access_token).toEqual(expect.any(String))
    }
    expect(fixed.counters).toMatchObject({ grants: 3, reuseDetected: 0 })
  })
})

describe('scope on refresh', () => {
  it('may narrow the scope but not widen it', async () => {
    const tokens = auth.signIn({ scope: 'read write offline_access' })
    const narrowed = await refresh(tokens.refreshToken, { scope: 'read' })
    const body = (await narrowed.json()) as TokenBody
    expect(body.scope).toBe('read')

    const widened = await refresh(body.refresh_token, { scope: 'read admin' })
    expect(widened.status).toBe(400)
    expect(await widened.json()).toMatchObject({ error: 'invalid_scope' })
  })
})

describe('expiry', () => {
  it('expires access tokens by the clock', async () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    vi.setSystemTime(1_700_000_000_000)
    const tokens = auth.signIn()
    vi.setSystemTime(1_700_000_059_999)
    expect((await callApi(tokens.accessToken)).status).toBe(200)
    vi.setSystemTime(1_700_000_060_000)
    const expired = await callApi(tokens.accessToken)
    expect(expired.status).toBe(401)
    expect(expired.headers.get('www-authenticate')).toBe(
      'Bearer realm="reauth-test", error="invalid_token", error_description="The access token expired"',
    )
    // The refresh token outlives the access token.
    const body = (await (await refresh(tokens.refreshToken)).json()) as TokenBody
    expect((await callApi(body.access_token)).status).toBe(200)
  })

  it('expires refresh tokens after refreshTokenTtl', async () => {
    const short = createAuthServer({ issuer: 'https://short.test', refreshTokenTtl: 30 })
    server.use(...short.handlers)
    vi.useFakeTimers({ toFake: ['Date'] })
    vi.setSystemTime(1_700_000_000_000)
    const tokens = short.signIn()
    vi.setSystemTime(1_700_000_030_000)
    const response = await fetch(short.tokenEndpoint, {
      method: 'POST',
      body: new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: tokens.refreshToken!,
      }),
    })
    expect(response.status).toBe(400)
    expect(await response.json()).toEqual({
      error: 'invalid_grant',
      error_description: 'The refresh token expired',
    })
  })

  it('expireAccessTokens() expires every token issued so far, and only those', async () => {
    const a = auth.signIn()
    const b = auth.signIn()
    auth.expireAccessTokens()
    expect((await callApi(a.accessToken)).status).toBe(401)
    expect((await callApi(b.accessToken)).status).toBe(401)
    const c = auth.signIn()
    expect((await callApi(c.accessToken)).status).toBe(200)
    const refreshed = (await (await refresh(a.refreshToken)).json()) as TokenBody
    expect((await callApi(refreshed.access_token)).status).toBe(200)
  })
})

describe('revoke', () => {
  it('revokes one family by its current or an old refresh token', async () => {
    const mine = auth.signIn()
    const other = auth.signIn()
    const rotated = (await (await refresh(mine.refreshToken)).json()) as TokenBody
    auth.revoke(mine.refreshToken)
    expect((await callApi(rotated.access_token)).status).toBe(401)
    const response = await refresh(rotated.refresh_token)
    expect(await response.json()).toEqual({
      error: 'invalid_grant',
      error_description: 'The refresh token was revoked',
    })
    expect((await callApi(other.accessToken)).status).toBe(200)
  })

  it('revokes every family without an argument', async () => {
    const a = auth.signIn()
    const b = auth.signIn()
    auth.revoke()
    expect((await callApi(a.accessToken)).status).toBe(401)
    expect((await refresh(b.refreshToken)).status).toBe(400)
    const response = await callApi(b.accessToken)
    expect(await response.json()).toEqual({
      error: 'invalid_token',
      error_description: 'The access token was revoked',
    })
  })

  it('throws for a refresh token it never issued, without echoing it', () => {
    expect(() => auth.revoke('rt_secret-value')).toThrow(ReauthOptionsError)
    expect(() => auth.revoke('rt_secret-value')).not.toThrow(/secret-value/)
  })
})

describe('token endpoint errors', () => {
  it.each([
    [{ grant_type: 'password', username: 'u', password: 'p' }, 'unsupported_grant_type'],
    // a public client (no secret): RFC 6749 §4.4 is for confidential clients
    [{ grant_type: 'client_credentials' }, 'unauthorized_client'],
    [{}, 'invalid_request'],
    [{ grant_type: 'refresh_token' }, 'invalid_request'],
    [{ grant_type: 'refresh_token', refresh_token: 'rt_unknown' }, 'invalid_grant'],
  ])('%o → 400 %s', async (params, error) => {
    const response = await fetch(auth.tokenEndpoint, {
      method: 'POST',
      body: new URLSearchParams(params),
    })
    expect(response.status).toBe(400)
    expect(response.headers.get('cache-control')).toBe('no-store')
    expect(response.headers.get('pragma')).toBe('no-cache')
    const body = (await response.json()) as { error: string; error_description: string }
    expect(body.error).toBe(error)
    expect(body.error_description).toEqual(expect.any(String))
    expect(body.error_description).not.toContain('rt_unknown')
    expect(auth.counters).toMatchObject({ tokenRequests: 1, failures: 1, grants: 0 })
  })

  it('rejects a JSON body (the token endpoint takes a form)', async () => {
    const tokens = auth.signIn()
    const response = await fetch(auth.tokenEndpoint, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ grant_type: 'refresh_token', refresh_token: tokens.refreshToken }),
    })
    expect(response.status).toBe(400)
    expect(await response.json()).toMatchObject({ error: 'invalid_request' })
  })

  it('rejects a repeated parameter (RFC 6749 §3.2)', async () => {
    const tokens = auth.signIn()
    const body = new URLSearchParams({
      grant_type: 'refresh_token',
      refresh_token: tokens.refreshToken!,
    })
    body.append('refresh_token', tokens.refreshToken!)
    const response = await fetch(auth.tokenEndpoint, { method: 'POST', body })
    expect(await response.json()).toMatchObject({ error: 'invalid_request' })
  })
})

describe('reset', () => {
  it('forgets tokens, outcomes and counters, keeping the counter objects live', async () => {
    const routes = auth.counters.routes
    const counters = auth.counters
    const presented = auth.presentedRefreshTokens
    const tokens = auth.signIn()
    await refresh(tokens.refreshToken)
    await callApi(tokens.accessToken)
    auth.enqueue({ type: 'network-error' })
    auth.reset()

    expect(auth.counters).toBe(counters)
    expect(counters).toEqual({
      tokenRequests: 0,
      grants: 0,
      codeGrants: 0,
      clientCredentialsGrants: 0,
      resourceGrants: {},
      revocations: 0,
      failures: 0,
      reuseDetected: 0,
      routes: { [`GET ${API}`]: { hits: 0, unauthorized: 0, forbidden: 0 } },
      dpop: { proofsAccepted: 0, proofsRejected: 0, nonceChallenges: 0 },
    })
    expect(auth.counters.routes).toBe(routes)
    expect(presented).toEqual([])
    // The queued network error is gone and the old tokens are unknown.
    const response = await refresh(tokens.refreshToken)
    expect(await response.json()).toMatchObject({ error: 'invalid_grant' })
    expect((await callApi(tokens.accessToken)).status).toBe(401)
  })
})
