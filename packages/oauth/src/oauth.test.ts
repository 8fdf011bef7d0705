import { createEngine, isRefreshError, isSessionExpiredError, type TokenSet } from '@reauth/core'
import { createAuthServer } from '@reauth/msw'
import { HttpResponse, http } from 'msw'
import { setupServer } from 'msw/node'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { createRefreshGrant, discover } from './index.js'

const auth = createAuthServer({ accessTokenTtl: 60 })
const confidential = createAuthServer({
  issuer: 'https://confidential.reauth.test',
  clientId: 'backend',
  clientSecret: 's3cret-value',
})
/** A confidential client whose id and secret need RFC 6749 §2.3.1 encoding. */
const dashed = createAuthServer({
  issuer: 'https://dashed.reauth.test',
  clientId: 'my-app.v2',
  clientSecret: 'p@ss-wörd~',
})
const tokenBodies: URLSearchParams[] = []
const tokenAuthorizations: Array<string | null> = []
const server = setupServer(
  http.post(confidential.tokenEndpoint, async ({ request }) => {
    tokenBodies.push(new URLSearchParams(await request.clone().text()))
    tokenAuthorizations.push(request.headers.get('authorization'))
  }),
  http.post(dashed.tokenEndpoint, ({ request }) => {
    tokenAuthorizations.push(request.headers.get('authorization'))
  }),
  ...auth.handlers,
  ...confidential.handlers,
  ...dashed.handlers,
  http.get('https://plain-oauth.reauth.test/.well-known/openid-configuration', () =>
    HttpResponse.json({ error: 'not_found' }, { status: 404 }),
  ),
  http.get('https://plain-oauth.reauth.test/.well-known/oauth-authorization-server', () =>
    HttpResponse.json({
      issuer: 'https://plain-oauth.reauth.test',
      token_endpoint: 'https://plain-oauth.reauth.test/token',
    }),
  ),
  http.get('https://mixup.reauth.test/.well-known/*', () =>
    HttpResponse.json({ issuer: 'https://attacker.reauth.test', token_endpoint: 'https://x/t' }),
  ),
)
beforeAll(() => server.listen({ onUnhandledRequest: 'error' }))
afterEach(() => {
  auth.reset()
  confidential.reset()
  dashed.reset()
  tokenBodies.length = 0
  tokenAuthorizations.length = 0
})
afterAll(() => server.close())

const context = (tokens: TokenSet) => ({
  tokens,
  signal: new AbortController().signal,
  startedAt: Date.now(),
})

describe('discover', () => {
  it('reads the OpenID Connect discovery document', async () => {
    const metadata = await discover(auth.issuer)
    expect(metadata.issuer).toBe(auth.issuer)
    expect(metadata.token_endpoint).toBe(auth.tokenEndpoint)
  })

  it('falls back to RFC 8414 when there is no OpenID configuration', async () => {
    const metadata = await discover('https://plain-oauth.reauth.test')
    expect(metadata.token_endpoint).toBe('https://plain-oauth.reauth.test/token')
  })

  it('rejects a document whose issuer differs (mix-up)', async () => {
    await expect(discover('https://mixup.reauth.test')).rejects.toMatchObject({
      code: 'DISCOVERY_FAILED',
    })
  })

  it('rejects an issuer that is not a URL', async () => {
    await expect(discover('nope')).rejects.toThrow(/"issuer"/)
  })
})

describe('createRefreshGrant', () => {
  it('runs the refresh_token grant for a public client and keeps rotation', async () => {
    const refresh = createRefreshGrant({ issuer: auth.issuer, clientId: 'reauth-test' })
    const initial = auth.signIn()
    const next = await refresh(context(initial))
    expect(next.accessToken).not.toBe(initial.accessToken)
    expect(next.refreshToken).not.toBe(initial.refreshToken)
    expect(next.tokenType).toBe('Bearer')
    expect(auth.counters.grants).toBe(1)
  })

  it('computes expiresAt from the moment the request was sent', async () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    try {
      vi.setSystemTime(1_000_000)
      const refresh = createRefreshGrant({ issuer: auth.issuer, clientId: 'reauth-test' })
      const next = await refresh(context(auth.signIn()))
      expect(next.expiresAt).toBe(1_000_000 + 60_000)
      expect(next.issuedAt).toBe(1_000_000)
    } finally {
      vi.useRealTimers()
    }
  })

  it.each([
    [
      'client_secret_basic' as const,
      (b: URLSearchParams, a: string | null) => !b.has('client_secret') && a?.startsWith('Basic '),
    ],
    [
      'client_secret_post' as const,
      (b: URLSearchParams, a: string | null) =>
        b.get('client_secret') === 's3cret-value' && a === null,
    ],
  ])('authenticates with %s', async (clientAuth, check) => {
    const refresh = createRefreshGrant({
      issuer: confidential.issuer,
      clientId: 'backend',
      clientSecret: 's3cret-value',
      clientAuth,
    })
    await refresh(context(confidential.signIn()))
    expect(confidential.counters.grants).toBe(1)
    expect(check(tokenBodies[0]!, tokenAuthorizations[0]!)).toBe(true)
  })

  describe('client_secret_basic encoding', () => {
    const basic = (header: string | null | undefined) =>
      Buffer.from(header?.replace(/^Basic /, '') ?? '', 'base64').toString('utf8')
    const options = {
      issuer: dashed.issuer,
      clientId: 'my-app.v2',
      clientSecret: 'p@ss-wörd~',
    }

    it('percent-encodes the client id and secret by default (RFC 6749 §2.3.1)', async () => {
      await createRefreshGrant(options)(context(dashed.signIn()))
      expect(basic(tokenAuthorizations[0])).toBe('my%2Dapp%2Ev2:p%40ss%2Dw%C3%B6rd%7E')
      expect(dashed.counters.grants).toBe(1)
    })

    it('encodeBasicCredentials: false sends them as they are (UTF-8)', async () => {
      await createRefreshGrant({ ...options, encodeBasicCredentials: false })(
        context(dashed.signIn()),
      )
      expect(basic(tokenAuthorizations[0])).toBe('my-app.v2:p@ss-wörd~')
      expect(dashed.counters.grants).toBe(1)
    })

    it('refuses a raw client id with ":" (HTTP Basic cannot carry it)', () => {
      expect(() =>
        createRefreshGrant({ ...options, clientId: 'urn:app', encodeBasicCredentials: false }),
      ).toThrow(/"clientId" contains ":"/)
      expect(() =>
        createRefreshGrant({ ...options, encodeBasicCredentials: 'no' as never }),
      ).toThrow(/"encodeBasicCredentials"/)
    })
  })

  it('sends scope and resource when asked', async () => {
    const refresh = createRefreshGrant({
      issuer: confidential.issuer,
      clientId: 'backend',
      clientSecret: 's3cret-value',
      scope: 'openid',
      resource: ['https://api.reauth.test'],
    })
    await refresh(context(confidential.signIn()))
    expect(tokenBodies[0]?.get('scope')).toBe('openid')
    expect(tokenBodies[0]?.getAll('resource')).toEqual(['https://api.reauth.test'])
  })

  it('validates its options with messages that quote them', () => {
    expect(() => createRefreshGrant({ clientId: '', issuer: auth.issuer })).toThrow(/"clientId"/)
    expect(() => createRefreshGrant({ clientId: 'x' } as never)).toThrow(/"issuer" or "server"/)
    expect(() =>
      createRefreshGrant({ issuer: auth.issuer, clientId: 'x', clientAuth: 'client_secret_post' }),
    ).toThrow(/"clientSecret"/)
  })

  describe('through the engine', () => {
    function engineFor(tokens = auth.signIn()) {
      return createEngine({
        tokens,
        refresh: createRefreshGrant({ issuer: auth.issuer, clientId: 'reauth-test' }),
      })
    }

    it('invalid_grant ends the session', async () => {
      auth.enqueue({ type: 'oauth-error', error: 'invalid_grant' })
      const engine = engineFor()
      const error = await engine.refresh().catch((e: unknown) => e)
      expect(isSessionExpiredError(error)).toBe(true)
      expect(error).toMatchObject({ error: 'invalid_grant', status: 400 })
    })

    it('invalid_client in a 401 WWW-Authenticate challenge ends the session', async () => {
      auth.enqueue({ type: 'oauth-error', error: 'invalid_client', status: 401 })
      const error = await engineFor()
        .refresh()
        .catch((e: unknown) => e)
      expect(isSessionExpiredError(error)).toBe(true)
      expect(error).toMatchObject({ error: 'invalid_client' })
    })

    it('503 with Retry-After is transient and keeps the wait', async () => {
      auth.enqueue({ type: 'status', status: 503, retryAfter: 7 })
      const engine = engineFor()
      const error = await engine.refresh().catch((e: unknown) => e)
      expect(isRefreshError(error) && error.retryable).toBe(true)
      expect(error).toMatchObject({ status: 503, retryAfter: 7000 })
    })

    it.each([
      [{ type: 'body' as const, body: '<html>oops' }, 'body'],
      [{ type: 'json' as const, json: { token_type: 'Bearer', expires_in: 60 } }, 'access_token'],
      [
        {
          type: 'json' as const,
          json: { access_token: 'a', token_type: 'Bearer', expires_in: 'an hour' },
        },
        'expires_in',
      ],
      [
        { type: 'json' as const, json: { access_token: 'a', token_type: 'mac', expires_in: 60 } },
        'token_type',
      ],
      [
        {
          type: 'json' as const,
          json: { access_token: 'a', token_type: 'Bearer', expires_in: -5 },
        },
        'expires_in',
      ],
    ])('a malformed response (%o) is a RefreshError naming %s', async (outcome, field) => {
      auth.enqueue(outcome)
      const engine = engineFor()
      const error = await engine.refresh().catch((e: unknown) => e)
      expect(isRefreshError(error)).toBe(true)
      expect(error).toMatchObject({ retryable: true })
      expect((error as Error).message).toContain(field)
    })

    it.each([
      ['a numeric string expires_in', { expires_in: '60' }],
      ['a lower-case token_type', { token_type: 'bearer' }],
      ['an upper-case token_type', { token_type: 'BEARER' }],
    ])('accepts what servers really send: %s', async (_what, body) => {
      vi.useFakeTimers({ toFake: ['Date'] })
      try {
        vi.setSystemTime(2_000_000)
        const initial = auth.signIn()
        auth.enqueue({ type: 'ok', body })
        const next = await engineFor(initial).refresh()
        expect(next).toMatchObject({ tokenType: 'Bearer', expiresAt: 2_000_000 + 60_000 })
        expect(next.refreshToken).not.toBe(initial.refreshToken)
      } finally {
        vi.useRealTimers()
      }
    })

    it('an ID token that fails validation (aud): RefreshError naming it, the rotated refresh token kept', async () => {
      const now = Math.floor(Date.now() / 1000)
      const b64u = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')
      const idToken = [
        b64u({ alg: 'RS256' }),
        b64u({ iss: auth.issuer, sub: 'u', aud: 'someone-else', iat: now, exp: now + 60 }),
        'c2ln',
      ].join('.')
      const initial = auth.signIn()
      const engine = engineFor(initial)
      auth.enqueue({ type: 'ok', body: { id_token: idToken } })
      const error = await engine.refresh().catch((e: unknown) => e)
      expect(isRefreshError(error)).toBe(true)
      expect(error).toMatchObject({ field: 'id_token', retryable: true })
      expect((error as Error).message).toMatch(/"id_token" is invalid.*audience/)
      const kept = (await engine.getToken())?.refreshToken
      expect(kept).not.toBe(initial.refreshToken)
      await engine.refresh()
      expect(auth.counters.reuseDetected).toBe(0)
      expect(auth.counters.grants).toBe(2)
    })

    it('a refreshed ID token about another user (sub) is invalid (OpenID Connect Core §12.2)', async () => {
      const now = Math.floor(Date.now() / 1000)
      const b64u = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')
      const idToken = (sub: string) =>
        [
          b64u({ alg: 'RS256' }),
          b64u({ iss: auth.issuer, sub, aud: 'reauth-test', iat: now, exp: now + 60 }),
          'c2ln',
        ].join('.')
      const initial = { ...auth.signIn(), idToken: idToken('user-1') }
      const engine = engineFor(initial)
      auth.enqueue({ type: 'ok', body: { id_token: idToken('user-1') } })
      expect((await engine.refresh()).idToken).toBe(idToken('user-1'))
      auth.enqueue({ type: 'ok', body: { id_token: idToken('user-2') } })
      const error = await engine.refresh().catch((e: unknown) => e)
      expect(isRefreshError(error)).toBe(true)
      expect(error).toMatchObject({ field: 'id_token' })
      expect((error as Error).message).toMatch(/"sub"/)
      await engine.refresh()
      expect(auth.counters.reuseDetected).toBe(0)
    })

    it('a 200 whose body breaks off is a network failure, not a malformed body', async () => {
      server.use(
        http.post(
          auth.tokenEndpoint,
          () =>
            new HttpResponse(
              new ReadableStream({
                start(controller) {
                  controller.enqueue(new TextEncoder().encode('{"access_token":"at_'))
                  controller.error(new TypeError('terminated'))
                },
              }),
              { status: 200, headers: { 'content-type': 'application/json' } },
            ),
          { once: true },
        ),
      )
      const error = await engineFor()
        .refresh()
        .catch((e: unknown) => e)
      expect(isRefreshError(error) && error.retryable).toBe(true)
      expect(error).toMatchObject({ field: undefined })
      expect((error as Error).message).toMatch(/terminated/)
    })

    it('a network error is transient with its cause', async () => {
      auth.enqueue({ type: 'network-error' })
      const error = await engineFor()
        .refresh()
        .catch((e: unknown) => e)
      expect(isRefreshError(error) && error.retryable).toBe(true)
      expect((error as Error).cause).toBeInstanceOf(TypeError)
    })
  })
})
