import { setupServer } from 'msw/node'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { createAuthServer } from './auth-server.js'
import { pkceChallenge } from './pkce.js'

const API = 'https://api.example.test/me'
const auth = createAuthServer()
const server = setupServer(...auth.handlers, auth.protect('GET', API))
const redirectUri = 'https://app.example.test/callback'
// RFC 7636 Appendix B.
const verifier = 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk'
const challenge = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM'

beforeAll(() => server.listen({ onUnhandledRequest: 'error' }))
afterEach(() => {
  auth.reset()
  vi.useRealTimers()
})
afterAll(() => server.close())

function exchange(code: string, overrides: Record<string, string> = {}) {
  return fetch(auth.tokenEndpoint, {
    method: 'POST',
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code,
      code_verifier: verifier,
      redirect_uri: redirectUri,
      client_id: 'reauth-test',
      ...overrides,
    }),
  })
}

interface TokenBody {
  access_token: string
  refresh_token?: string
  expires_in: number
  scope?: string
}

describe('pkceChallenge', () => {
  it('matches RFC 7636 Appendix B', async () => {
    expect(await pkceChallenge(verifier)).toBe(challenge)
  })
})

describe('authorization_code + PKCE', () => {
  it('exchanges a code with the right verifier for a new family', async () => {
    const code = auth.createAuthorizationCode({ codeChallenge: challenge, redirectUri })
    const response = await exchange(code)
    expect(response.status).toBe(200)
    expect(response.headers.get('cache-control')).toBe('no-store')
    const body = (await response.json()) as TokenBody
    expect(body).toEqual({
      access_token: expect.any(String),
      token_type: 'Bearer',
      expires_in: 60,
      refresh_token: expect.any(String),
      scope: 'openid offline_access',
    })
    expect(
      (await fetch(API, { headers: { Authorization: `Bearer ${body.access_token}` } })).status,
    ).toBe(200)
    expect(auth.counters).toMatchObject({ codeGrants: 1, grants: 0, tokenRequests: 1 })
    // The refresh token works like any other.
    const refreshed = await fetch(auth.tokenEndpoint, {
      method: 'POST',
      body: new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: body.refresh_token!,
      }),
    })
    expect(refreshed.status).toBe(200)
  })

  it('issues a refresh token only with offline_access', async () => {
    const code = auth.createAuthorizationCode({
      codeChallenge: challenge,
      redirectUri,
      scope: 'openid profile',
    })
    const body = (await (await exchange(code)).json()) as TokenBody
    expect(body).not.toHaveProperty('refresh_token')
    expect(body.scope).toBe('openid profile')
  })

  it('rejects a wrong verifier with invalid_grant and keeps the code for the right one', async () => {
    const code = auth.createAuthorizationCode({ codeChallenge: challenge, redirectUri })
    const wrong = await exchange(code, { code_verifier: 'x'.repeat(43) })
    expect(wrong.status).toBe(400)
    expect(await wrong.json()).toEqual({
      error: 'invalid_grant',
      error_description: 'PKCE verification failed: code_verifier does not match',
    })
    expect(auth.counters).toMatchObject({ codeGrants: 0, failures: 1 })
    expect((await exchange(code)).status).toBe(200)
  })

  it('is single-use: a second exchange fails and revokes what the first issued', async () => {
    const code = auth.createAuthorizationCode({ codeChallenge: challenge, redirectUri })
    const first = (await (await exchange(code)).json()) as TokenBody
    const second = await exchange(code)
    expect(second.status).toBe(400)
    expect(await second.json()).toMatchObject({ error: 'invalid_grant' })
    expect(
      (await fetch(API, { headers: { Authorization: `Bearer ${first.access_token}` } })).status,
    ).toBe(401)
    expect(auth.counters).toMatchObject({ codeGrants: 1, failures: 1 })
  })

  it('lets only one of two concurrent exchanges of a code succeed', async () => {
    const code = auth.createAuthorizationCode({ codeChallenge: challenge, redirectUri })
    const statuses = (await Promise.all([exchange(code), exchange(code)])).map((r) => r.status)
    expect(statuses.sort()).toEqual([200, 400])
  })

  it.each([
    [{ redirect_uri: 'https://app.example.test/other' }, 400, 'invalid_grant'],
    [{ code_verifier: '' }, 400, 'invalid_request'],
    [{ code_verifier: 'short' }, 400, 'invalid_request'],
    [{ redirect_uri: '' }, 400, 'invalid_request'],
    [{ code: '' }, 400, 'invalid_request'],
    [{ code: 'code_unknown' }, 400, 'invalid_grant'],
    [{ client_id: 'intruder' }, 401, 'invalid_client'],
  ])('rejects %o', async (overrides, status, error) => {
    const code = auth.createAuthorizationCode({ codeChallenge: challenge, redirectUri })
    const response = await exchange(code, overrides)
    expect(response.status).toBe(status)
    const text = await response.text()
    expect(JSON.parse(text)).toMatchObject({ error })
    expect(text).not.toContain(code)
  })

  it('expires codes after ten minutes', async () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    vi.setSystemTime(1_700_000_000_000)
    const code = auth.createAuthorizationCode({ codeChallenge: challenge, redirectUri })
    vi.setSystemTime(1_700_000_600_000)
    const response = await exchange(code)
    expect(await response.json()).toEqual({
      error: 'invalid_grant',
      error_description: 'The authorization code expired',
    })
  })

  it('honours an ok outcome expiresIn on a code exchange', async () => {
    auth.enqueue({ type: 'ok', expiresIn: 3 })
    const code = auth.createAuthorizationCode({ codeChallenge: challenge, redirectUri })
    const body = (await (await exchange(code)).json()) as TokenBody
    expect(body.expires_in).toBe(3)
  })

  it('validates its options', () => {
    expect(() =>
      auth.createAuthorizationCode({ codeChallenge: verifier.slice(0, 10), redirectUri }),
    ).toThrow(/"codeChallenge"/)
    expect(() =>
      auth.createAuthorizationCode({
        codeChallenge: challenge,
        redirectUri,
        codeChallengeMethod: 'plain' as never,
      }),
    ).toThrow(/"codeChallengeMethod" must be "S256"/)
    expect(() =>
      auth.createAuthorizationCode({ codeChallenge: challenge, redirectUri: '' }),
    ).toThrow(/"redirectUri"/)
  })
})
