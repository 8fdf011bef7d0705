import { inspect } from 'node:util'
import { isOAuthError, isReauthOptionsError, isRefreshError } from '@reauth/core'
import { createAuthServer } from '@reauth/msw'
import { HttpResponse, http } from 'msw'
import { setupServer } from 'msw/node'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import {
  beginSignIn,
  completeSignIn,
  createRefreshGrant,
  isSignInError,
  PROTECTED_PARAMETERS,
  type SignInOptions,
  type SignInRequest,
} from './index.js'

/** An OpenID Provider (discovered from openid-configuration) that lists offline_access. */
const op = createAuthServer({ issuer: 'https://op.reauth.test' })
/** A plain OAuth 2.0 server: RFC 8414 metadata only, no OpenID Connect. */
const plain = createAuthServer({
  issuer: 'https://plain.reauth.test',
  defaultScope: 'read offline_access',
})
/** An OpenID Provider whose scopes_supported does not list offline_access. */
const noOffline = createAuthServer({
  issuer: 'https://no-offline.reauth.test',
  defaultScope: 'openid profile',
})
const tokenRequests: URLSearchParams[] = []
const server = setupServer(
  http.get(`${plain.issuer}/.well-known/openid-configuration`, () =>
    HttpResponse.json({ error: 'not_found' }, { status: 404 }),
  ),
  http.post('*/oauth/token', async ({ request }) => {
    tokenRequests.push(new URLSearchParams(await request.clone().text()))
  }),
  ...op.handlers,
  ...plain.handlers,
  ...noOffline.handlers,
)
beforeAll(() => server.listen({ onUnhandledRequest: 'error' }))
afterEach(() => {
  for (const auth of [op, plain, noOffline]) auth.reset()
  tokenRequests.length = 0
})
afterAll(() => server.close())

const redirectUri = 'https://app.reauth.test/callback'
const optionsFor = (issuer: string, more: Partial<SignInOptions> = {}): SignInOptions => ({
  issuer,
  clientId: 'reauth-test',
  redirectUri,
  ...more,
})

/** The authorization server's redirect back to the app (the msw kit consents at once). */
async function authorize(request: SignInRequest): Promise<string> {
  const redirect = await fetch(request.url, { redirect: 'manual' })
  const location = redirect.headers.get('location')
  if (!location) throw new Error(`no redirect: HTTP ${redirect.status}`)
  return location
}

const b64u = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')

/** An ID token as a token endpoint returns it (its signature is not checked over TLS). */
function idToken(claims: Record<string, unknown>): string {
  const now = Math.floor(Date.now() / 1000)
  return [
    b64u({ alg: 'RS256', typ: 'JWT' }),
    b64u({
      iss: op.issuer,
      sub: 'user-1',
      aud: 'reauth-test',
      iat: now,
      exp: now + 600,
      ...claims,
    }),
    'c2lnbmF0dXJl',
  ].join('.')
}

async function failure(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected a failure')
    },
    (error: unknown) => error,
  )
}

describe('beginSignIn', () => {
  it('builds an authorization URL with S256, state and redirect_uri', async () => {
    const request = await beginSignIn(optionsFor(op.issuer, { scope: 'profile' }))
    const params = request.url.searchParams
    expect(request.url.origin + request.url.pathname).toBe(op.authorizationEndpoint)
    expect(params.get('code_challenge_method')).toBe('S256')
    expect(params.get('code_challenge')).toMatch(/^[\w-]{43}$/)
    expect(params.get('state')).toBe(request.state)
    expect(params.get('redirect_uri')).toBe(redirectUri)
    expect(params.get('response_type')).toBe('code')
    expect(params.get('scope')).toBe('profile offline_access')
    expect(request.nonce).toBeUndefined()
    expect(params.has('nonce')).toBe(false)
  })

  it('an OpenID Provider: openid by default, a nonce, offline_access and prompt=consent', async () => {
    const request = await beginSignIn(optionsFor(op.issuer))
    const params = request.url.searchParams
    expect(params.get('scope')).toBe('openid offline_access')
    expect(request.nonce).toBeDefined()
    expect(params.get('nonce')).toBe(request.nonce)
    expect(params.get('prompt')).toBe('consent')
  })

  it('a plain RFC 8414 server: no openid, no nonce, no prompt', async () => {
    const request = await beginSignIn(optionsFor(plain.issuer))
    const params = request.url.searchParams
    expect(params.get('scope')).toBe('offline_access')
    expect(request.nonce).toBeUndefined()
    expect(params.has('nonce')).toBe(false)
    expect(params.has('prompt')).toBe(false)
  })

  it('metadata given as "server" that looks like an OpenID Provider gets openid', async () => {
    const metadata = {
      issuer: 'https://given.reauth.test',
      authorization_endpoint: 'https://given.reauth.test/authorize',
      token_endpoint: 'https://given.reauth.test/token',
    }
    const given = { clientId: 'reauth-test', redirectUri }
    const oauth2 = await beginSignIn({ ...given, server: metadata })
    expect(oauth2.url.searchParams.get('scope')).toBe('offline_access')
    const oidc = await beginSignIn({
      ...given,
      server: { ...metadata, userinfo_endpoint: 'https://given.reauth.test/me' },
    })
    expect(oidc.url.searchParams.get('scope')).toBe('openid offline_access')
    expect(oidc.nonce).toBeDefined()
  })

  it('offlineAccess "auto" does not ask when scopes_supported does not list offline_access', async () => {
    const request = await beginSignIn(optionsFor(noOffline.issuer))
    expect(request.url.searchParams.get('scope')).toBe('openid')
    expect(request.url.searchParams.has('prompt')).toBe(false)
  })

  it('offlineAccess true asks anyway; false never adds it', async () => {
    const forced = await beginSignIn(optionsFor(noOffline.issuer, { offlineAccess: true }))
    expect(forced.url.searchParams.get('scope')).toBe('openid offline_access')
    expect(forced.url.searchParams.get('prompt')).toBe('consent')
    const without = await beginSignIn(optionsFor(op.issuer, { offlineAccess: false }))
    expect(without.url.searchParams.get('scope')).toBe('openid')
    expect(without.url.searchParams.has('prompt')).toBe(false)
  })

  it('prompt: a value of its own, or false for none', async () => {
    const login = await beginSignIn(optionsFor(op.issuer, { prompt: 'login' }))
    expect(login.url.searchParams.get('prompt')).toBe('login')
    const none = await beginSignIn(optionsFor(op.issuer, { prompt: false }))
    expect(none.url.searchParams.has('prompt')).toBe(false)
    expect(none.url.searchParams.get('scope')).toBe('openid offline_access')
  })

  it('passes other parameters through', async () => {
    const request = await beginSignIn(
      optionsFor(op.issuer, { parameters: { login_hint: 'ada@example.com' } }),
    )
    expect(request.url.searchParams.get('login_hint')).toBe('ada@example.com')
  })

  it.each(PROTECTED_PARAMETERS)('refuses "parameters" that set %s', async (name) => {
    const error = await failure(
      beginSignIn(optionsFor(op.issuer, { parameters: { [name]: 'plain' } })),
    )
    expect(isReauthOptionsError(error)).toBe(true)
    expect((error as Error).message).toContain(`"parameters.${name}"`)
  })

  it('validates its options with messages that quote them', async () => {
    await expect(beginSignIn(optionsFor(op.issuer, { redirectUri: '/cb' }))).rejects.toThrow(
      /"redirectUri"/,
    )
    await expect(
      beginSignIn(optionsFor(op.issuer, { offlineAccess: 'yes' as never })),
    ).rejects.toThrow(/"offlineAccess"/)
    await expect(beginSignIn(optionsFor(op.issuer, { prompt: '' }))).rejects.toThrow(/"prompt"/)
  })
})

describe('completeSignIn', () => {
  it('exchanges the code for the first token set with a working refresh token', async () => {
    const options = optionsFor(op.issuer, { scope: 'profile' })
    const request = await beginSignIn(options)
    const tokens = await completeSignIn(options, {
      callbackUrl: await authorize(request),
      ...request,
    })
    expect(tokens.refreshToken).toBeDefined()
    expect(op.counters.codeGrants).toBe(1)
    const next = await createRefreshGrant(options)({
      tokens,
      signal: new AbortController().signal,
      startedAt: Date.now(),
    })
    expect(next.accessToken).not.toBe(tokens.accessToken)
  })

  it('on a plain OAuth 2.0 server: no ID token is needed', async () => {
    const options = optionsFor(plain.issuer)
    const request = await beginSignIn(options)
    const tokens = await completeSignIn(options, {
      callbackUrl: await authorize(request),
      ...request,
    })
    expect(tokens.refreshToken).toBeDefined()
    expect(tokens.idToken).toBeUndefined()
  })

  it('with openid: a valid ID token with the nonce is required and kept', async () => {
    const options = optionsFor(op.issuer)
    const request = await beginSignIn(options)
    const token = idToken({ nonce: request.nonce })
    op.enqueue({ type: 'ok', body: { id_token: token } })
    const tokens = await completeSignIn(options, {
      callbackUrl: await authorize(request),
      ...request,
    })
    expect(tokens.idToken).toBe(token)
  })

  it('with openid and no ID token in the response: "id_token" is missing', async () => {
    const options = optionsFor(op.issuer)
    const request = await beginSignIn(options)
    const error = await failure(
      completeSignIn(options, { callbackUrl: await authorize(request), ...request }),
    )
    expect(isRefreshError(error)).toBe(true)
    expect(error).toMatchObject({ field: 'id_token' })
    expect((error as Error).message).toMatch(/"id_token" is missing/)
  })

  it.each([
    ['another audience', { aud: 'someone-else' }, /audience/],
    ['another nonce', { nonce: 'forged-nonce' }, /nonce/],
    ['another issuer', { iss: 'https://attacker.reauth.test' }, /issuer/],
  ])('an ID token for %s is invalid', async (_what, claims, reason) => {
    const options = optionsFor(op.issuer)
    const request = await beginSignIn(options)
    op.enqueue({ type: 'ok', body: { id_token: idToken({ nonce: request.nonce, ...claims }) } })
    const error = await failure(
      completeSignIn(options, { callbackUrl: await authorize(request), ...request }),
    )
    expect(isRefreshError(error)).toBe(true)
    expect(error).toMatchObject({ field: 'id_token' })
    expect((error as Error).message).toMatch(/"id_token" is invalid/)
    expect((error as Error).message).toMatch(reason)
  })

  it('state: undefined does not turn the state check off', async () => {
    const options = optionsFor(op.issuer, { scope: 'profile' })
    const request = await beginSignIn(options)
    const callback = new URL(await authorize(request))
    callback.searchParams.delete('state')
    const error = await failure(
      completeSignIn(options, {
        ...request,
        callbackUrl: callback,
        state: undefined as unknown as string,
      }),
    )
    expect(isReauthOptionsError(error)).toBe(true)
    expect((error as Error).message).toContain('"state"')
    expect(tokenRequests).toEqual([])
  })

  it.each([
    ['codeVerifier', { codeVerifier: undefined }],
    ['codeVerifier', { codeVerifier: '' }],
    ['nonce', { nonce: undefined }],
    ['callbackUrl', { callbackUrl: 'not a url' }],
  ])('requires "%s"', async (name, change) => {
    const options = optionsFor(op.issuer)
    const request = await beginSignIn(options)
    const callbackUrl = await authorize(request)
    const error = await failure(
      completeSignIn(options, { callbackUrl, ...request, ...change } as never),
    )
    expect(isReauthOptionsError(error)).toBe(true)
    expect((error as Error).message).toContain(`"${name}"`)
    expect(tokenRequests).toEqual([])
  })

  it('rejects a callback with the wrong state', async () => {
    const options = optionsFor(op.issuer, { scope: 'profile' })
    const request = await beginSignIn(options)
    const callbackUrl = await authorize(request)
    const error = await failure(
      completeSignIn(options, { callbackUrl, ...request, state: 'forged' }),
    )
    expect(isSignInError(error)).toBe(true)
    expect(error).toMatchObject({ code: 'SIGN_IN_FAILED' })
    expect((error as Error).message).toMatch(/"state"/)
    expect(tokenRequests).toEqual([])
    // oauth4webapi keeps the callback's parameters (the code, the state) as its cause
    const shown = inspect(error, { showHidden: true, depth: Number.POSITIVE_INFINITY })
    const code = new URL(callbackUrl).searchParams.get('code') as string
    expect(shown).not.toContain(code)
    expect(shown).not.toContain(request.state)
  })

  it('a callback without a code is a SignInError', async () => {
    const options = optionsFor(op.issuer, { scope: 'profile' })
    const request = await beginSignIn(options)
    const callbackUrl = `${redirectUri}?state=${request.state}&iss=${encodeURIComponent(op.issuer)}`
    const error = await failure(completeSignIn(options, { callbackUrl, ...request }))
    expect(isSignInError(error)).toBe(true)
    expect((error as Error).message).toMatch(/no "code"/)
    expect(tokenRequests).toEqual([])
  })

  it("an error in the redirect is the authorization server's, not the token endpoint's", async () => {
    const options = optionsFor(op.issuer, { scope: 'profile' })
    const request = await beginSignIn(options)
    const callbackUrl = `${redirectUri}?error=access_denied&error_description=User+said+no&state=${request.state}&iss=${encodeURIComponent(op.issuer)}`
    const error = await failure(completeSignIn(options, { callbackUrl, ...request }))
    expect(isSignInError(error)).toBe(true)
    expect(isOAuthError(error)).toBe(false)
    expect(error).toMatchObject({
      code: 'SIGN_IN_FAILED',
      error: 'access_denied',
      errorDescription: 'User said no',
    })
    expect((error as Error).message).not.toMatch(/token endpoint/)
    expect((error as Error).message).toMatch(/redirected back with "access_denied"/)
    expect(tokenRequests).toEqual([])
  })

  it('a wrong code verifier fails the exchange at the token endpoint (PKCE)', async () => {
    const options = optionsFor(op.issuer, { scope: 'profile' })
    const request = await beginSignIn(options)
    const error = await failure(
      completeSignIn(options, {
        callbackUrl: await authorize(request),
        ...request,
        codeVerifier: 'x'.repeat(43),
      }),
    )
    expect(isOAuthError(error)).toBe(true)
    expect(error).toMatchObject({ error: 'invalid_grant' })
    expect((error as Error).message).toMatch(/token endpoint/)
  })
})
