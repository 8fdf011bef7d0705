/**
 * The service side of @reauth/oauth: the client credentials grant (an `acquire` function),
 * RFC 7009 revocation (a `revoke` function) and RFC 8707 resources, against @reauth/msw.
 */
import { inspect } from 'node:util'
import {
  createEngine,
  isOAuthError,
  isReauthOptionsError,
  isRefreshError,
  isSessionExpiredError,
  type TokenSet,
} from '@reauth/core'
import { createAuthServer } from '@reauth/msw'
import { HttpResponse, http } from 'msw'
import { setupServer } from 'msw/node'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { classifyRefreshFailure } from '../../core/src/failure.js'
import {
  clientCredentials,
  createRefreshGrant,
  isRevocationError,
  type RevocationError,
  revokeTokens,
} from './index.js'

const ORDERS = 'https://orders.example.test'
const BILLING = 'https://billing.example.test'
const SECRET = 's3cret-value'
const sts = createAuthServer({
  issuer: 'https://sts.example.test',
  clientId: 'billing-job',
  clientSecret: SECRET,
  accessTokenTtl: 30,
})
const service = { issuer: sts.issuer, clientId: 'billing-job', clientSecret: SECRET }

const tokenBodies: URLSearchParams[] = []
const revocations: URLSearchParams[] = []
const server = setupServer(
  // listeners: they record and fall through to the fake server
  http.post(sts.tokenEndpoint, async ({ request }) => {
    tokenBodies.push(new URLSearchParams(await request.clone().text()))
  }),
  http.post(sts.revocationEndpoint, async ({ request }) => {
    revocations.push(new URLSearchParams(await request.clone().text()))
  }),
  ...sts.handlers,
  sts.protect('GET', `${ORDERS}/orders`, undefined, { resource: ORDERS }),
  sts.protect('GET', `${BILLING}/invoices`, undefined, { resource: BILLING }),
  sts.protect('GET', 'https://api.example.test/me'),
)
beforeAll(() => server.listen({ onUnhandledRequest: 'error' }))
afterEach(() => {
  server.resetHandlers()
  sts.reset()
  tokenBodies.length = 0
  revocations.length = 0
  vi.useRealTimers()
})
afterAll(() => server.close())

const acquireContext = (resource?: string) => ({
  signal: new AbortController().signal,
  startedAt: Date.now(),
  ...(resource === undefined ? {} : { resource }),
})

function call(url: string, tokens: TokenSet) {
  return fetch(url, { headers: { authorization: `Bearer ${tokens.accessToken}` } })
}

async function failure(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected a rejection')
    },
    (error: unknown) => error,
  )
}

/** util.inspect of an error shows its whole cause chain. */
function printed(error: unknown): string {
  return inspect(error, { depth: 10, showHidden: true })
}

describe('clientCredentials', () => {
  it('gets an access token with client_secret_basic, the scope asked, and no refresh token', async () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    vi.setSystemTime(5_000_000)
    const acquire = clientCredentials(service, { scope: 'invoices:read' })
    const tokens = await acquire(acquireContext())
    expect(tokens).toEqual({
      accessToken: expect.stringMatching(/^at_/),
      tokenType: 'Bearer',
      expiresAt: 5_000_000 + 30_000,
      issuedAt: 5_000_000,
      scope: 'invoices:read',
    })
    expect(tokenBodies[0]?.get('grant_type')).toBe('client_credentials')
    expect(tokenBodies[0]?.get('scope')).toBe('invoices:read')
    expect(tokenBodies[0]?.has('client_secret')).toBe(false)
    expect((await call('https://api.example.test/me', tokens)).status).toBe(200)
    expect(sts.counters.clientCredentialsGrants).toBe(1)
  })

  it('keeps no refresh token even when the server sends one', async () => {
    sts.enqueue({ type: 'ok', body: { refresh_token: 'rt_unexpected', id_token: 'x.y.z' } })
    const tokens = await clientCredentials(service)(acquireContext())
    expect(tokens.refreshToken).toBeUndefined()
    expect(tokens.idToken).toBeUndefined()
  })

  it('a malformed response with a refresh token: a RefreshError that gives the engine no refresh token to store', async () => {
    const acquire = clientCredentials(service)
    // An engine whose refresh is the acquire: a refresh token carried by the error would be stored.
    const engine = createEngine({
      tokens: { accessToken: 'old-access', tokenType: 'Bearer', expiresAt: 0 },
      refresh: ({ signal, startedAt }) => acquire({ signal, startedAt }),
    })
    sts.enqueue({ type: 'ok', body: { token_type: 'mac', refresh_token: 'rt_unexpected' } })
    const error = await failure(engine.refresh())
    expect(isRefreshError(error)).toBe(true)
    expect(error).toMatchObject({ field: 'token_type', retryable: true })
    expect((await engine.getToken())?.refreshToken).toBeUndefined()
    engine.dispose()
  })

  it('sends client_secret_post when asked', async () => {
    await clientCredentials({ ...service, clientAuth: 'client_secret_post' })(acquireContext())
    expect(tokenBodies[0]?.get('client_secret')).toBe(SECRET)
  })

  it("sends the engine's resource, else the option's; the token is that audience's", async () => {
    const acquire = clientCredentials(service, { resource: BILLING })
    const orders = await acquire(acquireContext(ORDERS))
    expect(tokenBodies[0]?.getAll('resource')).toEqual([ORDERS])
    expect((await call(`${ORDERS}/orders`, orders)).status).toBe(200)
    expect((await call(`${BILLING}/invoices`, orders)).status).toBe(401)
    const billing = await acquire(acquireContext())
    expect(tokenBodies[1]?.getAll('resource')).toEqual([BILLING])
    expect((await call(`${BILLING}/invoices`, billing)).status).toBe(200)
    expect(sts.counters.resourceGrants).toEqual({ [ORDERS]: 1, [BILLING]: 1 })
  })

  it('a JWT access token without expires_in expires at its exp', async () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    vi.setSystemTime(7_000_000)
    const b64u = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')
    const jwt = `${b64u({ alg: 'RS256', typ: 'at+jwt' })}.${b64u({ iat: 7_000, exp: 7_090 })}.c2ln`
    sts.enqueue({ type: 'ok', body: { access_token: jwt, expires_in: null } })
    const tokens = await clientCredentials(service)(acquireContext())
    expect(tokens.expiresAt).toBe(7_000_000 + 90_000)
  })

  it('invalid_client is an OAuthError the engine takes as terminal', async () => {
    const acquire = clientCredentials({ ...service, clientSecret: 'wrong-secret' })
    const error = await failure(acquire(acquireContext()))
    expect(isOAuthError(error)).toBe(true)
    expect(error).toMatchObject({ error: 'invalid_client', status: 401 })
    expect(isSessionExpiredError(classifyRefreshFailure(error, [], Date.now()))).toBe(true)
    expect(printed(error)).not.toContain('wrong-secret')
  })

  it('unauthorized_client (the client may not use the grant) is terminal too', async () => {
    sts.enqueue({ type: 'oauth-error', error: 'unauthorized_client' })
    const error = await failure(clientCredentials(service)(acquireContext()))
    expect(error).toMatchObject({ error: 'unauthorized_client', status: 400 })
    expect(isSessionExpiredError(classifyRefreshFailure(error, [], Date.now()))).toBe(true)
  })

  it('a 503 is transient for the engine', async () => {
    sts.enqueue({ type: 'status', status: 503, retryAfter: 3 })
    const error = await failure(clientCredentials(service)(acquireContext()))
    const outcome = classifyRefreshFailure(error, [], Date.now())
    expect(isRefreshError(outcome) && outcome.retryable).toBe(true)
    expect(outcome).toMatchObject({ status: 503, retryAfter: 3000 })
  })

  it('honours the signal: an aborted signal sends nothing; an abort mid-request rejects with its reason', async () => {
    const acquire = clientCredentials(service)
    await acquire(acquireContext()) // discovery done
    const requests = sts.counters.tokenRequests
    const aborted = AbortSignal.abort(new DOMException('refreshTimeout', 'TimeoutError'))
    const before = await failure(acquire({ signal: aborted, startedAt: Date.now() }))
    expect((before as Error).name).toBe('TimeoutError')
    expect(sts.counters.tokenRequests).toBe(requests)

    const gate = sts.hold()
    const controller = new AbortController()
    const pending = acquire({ signal: controller.signal, startedAt: Date.now() })
    await gate.reached
    controller.abort(new DOMException('refreshTimeout', 'TimeoutError'))
    const during = await failure(pending)
    expect((during as Error).name).toBe('TimeoutError')
    gate.release()
  })

  it('validates its options at once, quoting them', () => {
    const catching = (make: () => unknown) => {
      try {
        make()
      } catch (error) {
        expect(isReauthOptionsError(error)).toBe(true)
        return (error as Error).message
      }
      throw new Error('expected a ReauthOptionsError')
    }
    expect(catching(() => clientCredentials({ issuer: sts.issuer, clientId: 'x' }))).toMatch(
      /"clientSecret" is required/,
    )
    expect(catching(() => clientCredentials({ ...service, clientAuth: 'none' }))).toMatch(
      /"clientSecret"/,
    )
    expect(catching(() => clientCredentials(service, { scope: 1 as never }))).toMatch(/"scope"/)
    expect(catching(() => clientCredentials(service, { resource: '/relative' }))).toMatch(
      /"resource"/,
    )
    expect(catching(() => clientCredentials({ ...service, issuer: 'http://sts.test' }))).toMatch(
      /"issuer"/,
    )
  })
})

describe('createRefreshGrant with resources', () => {
  it("sends the engine's resource instead of the option's; one refresh token serves both", async () => {
    const refresh = createRefreshGrant({ ...service, resource: BILLING })
    const signedIn = sts.signIn({ resources: [ORDERS, BILLING] })
    const context = (tokens: TokenSet, resource?: string) => ({
      tokens,
      signal: new AbortController().signal,
      startedAt: Date.now(),
      ...(resource === undefined ? {} : { resource }),
    })
    const orders = await refresh(context(signedIn, ORDERS))
    expect(tokenBodies[0]?.getAll('resource')).toEqual([ORDERS])
    const billing = await refresh(context(orders))
    expect(tokenBodies[1]?.getAll('resource')).toEqual([BILLING])
    expect((await call(`${ORDERS}/orders`, orders)).status).toBe(200)
    expect((await call(`${BILLING}/invoices`, billing)).status).toBe(200)
    expect((await call(`${BILLING}/invoices`, orders)).status).toBe(401)
    expect(sts.counters).toMatchObject({ grants: 2, reuseDetected: 0 })
  })
})

describe('revokeTokens', () => {
  const revokeContext = (tokens: TokenSet, signal = new AbortController().signal) => ({
    tokens,
    signal,
  })

  it('revokes the refresh token first, then the access token; the server then refuses both', async () => {
    const tokens = sts.signIn()
    await revokeTokens(service)(revokeContext(tokens))
    expect(revocations.map((body) => [body.get('token_type_hint'), body.get('token')])).toEqual([
      ['refresh_token', tokens.refreshToken],
      ['access_token', tokens.accessToken],
    ])
    expect(sts.counters.revocations).toBe(2)
    const refresh = createRefreshGrant(service)
    const error = await failure(
      refresh({ tokens, signal: new AbortController().signal, startedAt: Date.now() }),
    )
    expect(error).toMatchObject({ error: 'invalid_grant' })
    expect((await call('https://api.example.test/me', tokens)).status).toBe(401)
  })

  it('accessToken: false revokes the refresh token only', async () => {
    await revokeTokens(service, { accessToken: false })(revokeContext(sts.signIn()))
    expect(revocations.map((body) => body.get('token_type_hint'))).toEqual(['refresh_token'])
  })

  it('a set without a refresh token (client credentials) revokes the access token', async () => {
    const tokens = await clientCredentials(service)(acquireContext())
    await revokeTokens(service)(revokeContext(tokens))
    expect(revocations.map((body) => body.get('token_type_hint'))).toEqual(['access_token'])
    expect((await call('https://api.example.test/me', tokens)).status).toBe(401)
  })

  it('a server without revocation_endpoint: RevocationError, not retryable', async () => {
    const revoke = revokeTokens({
      clientId: 'billing-job',
      clientSecret: SECRET,
      server: { issuer: sts.issuer, token_endpoint: sts.tokenEndpoint },
    })
    const error = (await failure(revoke(revokeContext(sts.signIn())))) as RevocationError
    expect(isRevocationError(error)).toBe(true)
    expect(error).toMatchObject({
      code: 'REVOCATION_FAILED',
      retryable: false,
      tokenTypeHint: 'refresh_token',
    })
    expect(error.message).toMatch(/no "revocation_endpoint"/)
    expect(revocations).toEqual([])
  })

  it('an http: revocation endpoint is refused without allowInsecureRequests', async () => {
    const revoke = revokeTokens({
      clientId: 'billing-job',
      clientSecret: SECRET,
      server: {
        issuer: sts.issuer,
        token_endpoint: sts.tokenEndpoint,
        revocation_endpoint: 'http://sts.example.test/oauth/revoke',
      },
    })
    const error = await failure(revoke(revokeContext(sts.signIn())))
    expect(error).toMatchObject({ retryable: false })
    expect((error as Error).message).toMatch(/"revocation_endpoint" is an http: URL/)
  })

  it.each([
    ['a network error', () => HttpResponse.error(), { retryable: true }],
    [
      'a 503',
      () => new HttpResponse('<h1>down</h1>', { status: 503 }),
      { retryable: true, status: 503 },
    ],
    [
      'a 400 §5.2 error',
      () => HttpResponse.json({ error: 'invalid_request' }, { status: 400 }),
      { retryable: false, status: 400, error: 'invalid_request' },
    ],
  ])(
    '%s: a typed RevocationError, and the access token is still tried',
    async (_what, answer, fields) => {
      const tokens = sts.signIn()
      server.use(http.post(sts.revocationEndpoint, answer, { once: true }))
      const error = await failure(revokeTokens(service)(revokeContext(tokens)))
      expect(isRevocationError(error)).toBe(true)
      expect(error).toMatchObject({ ...fields, tokenTypeHint: 'refresh_token' })
      // the access token was revoked all the same
      expect(revocations.map((body) => body.get('token_type_hint'))).toEqual(['access_token'])
      expect((await call('https://api.example.test/me', tokens)).status).toBe(401)
    },
  )

  it('no token or secret in the message, the fields or the printed cause chain', async () => {
    const tokens = sts.signIn()
    const secrets = [tokens.accessToken, tokens.refreshToken as string, SECRET]
    // A server that echoes what it got, and a custom fetch whose error quotes the request.
    server.use(
      http.post(
        sts.revocationEndpoint,
        async ({ request }) => {
          const body = new URLSearchParams(await request.text())
          return HttpResponse.json(
            {
              error: 'invalid_request',
              error_description: `bad token ${body.get('token')} from ${request.headers.get('authorization')}`,
            },
            { status: 400 },
          )
        },
        { once: true },
      ),
    )
    const echoed = await failure(revokeTokens(service)(revokeContext(tokens)))
    const leakyFetch: typeof fetch = async (input, init) => {
      if (String(input).endsWith('/oauth/revoke')) {
        throw new TypeError(`connect ECONNRESET while sending ${String(init?.body)}`, {
          cause: new Error(`socket hang up: ${String(init?.body)}`),
        })
      }
      return fetch(input, init)
    }
    const thrown = await failure(
      revokeTokens({ ...service, fetch: leakyFetch })(revokeContext(tokens)),
    )
    for (const error of [echoed, thrown]) {
      expect(isRevocationError(error)).toBe(true)
      const text = `${printed(error)} ${JSON.stringify(error)} ${(error as Error).message}`
      for (const secret of secrets) expect(text).not.toContain(secret)
      expect(text).toContain('[redacted]')
    }
    expect(thrown).toMatchObject({ retryable: true })
  })

  it('a JWT access token the server cannot revoke (unsupported_token_type) is no failure', async () => {
    server.use(
      http.post(sts.revocationEndpoint, async ({ request }) => {
        const body = new URLSearchParams(await request.clone().text())
        if (body.get('token_type_hint') === 'access_token') {
          return HttpResponse.json({ error: 'unsupported_token_type' }, { status: 400 })
        }
      }),
    )
    await expect(revokeTokens(service)(revokeContext(sts.signIn()))).resolves.toBeUndefined()
  })

  it('honours the signal: aborted, a retryable RevocationError, and nothing more is sent', async () => {
    const controller = new AbortController()
    server.use(
      http.post(
        sts.revocationEndpoint,
        () => {
          controller.abort()
          return new Promise<Response>(() => {})
        },
        { once: true },
      ),
    )
    const error = await failure(
      revokeTokens(service)(revokeContext(sts.signIn(), controller.signal)),
    )
    expect(isRevocationError(error)).toBe(true)
    expect(error).toMatchObject({ retryable: true, tokenTypeHint: 'refresh_token' })
    expect((error as Error).message).toMatch(/aborted/)
    // the access token's request was not sent (the recorder sees what the held handler did not)
    expect(revocations).toEqual([])
  })

  it('a wrong client secret: invalid_client, not retryable, the secret nowhere', async () => {
    const tokens = sts.signIn()
    const error = await failure(
      revokeTokens({ ...service, clientSecret: 'wrong-secret-value' })(revokeContext(tokens)),
    )
    expect(isRevocationError(error)).toBe(true)
    expect(error).toMatchObject({ error: 'invalid_client', status: 401, retryable: false })
    for (const secret of [
      'wrong-secret-value',
      tokens.accessToken,
      tokens.refreshToken as string,
    ]) {
      expect(printed(error)).not.toContain(secret)
    }
    expect(sts.counters.revocations).toBe(0)
  })

  it('validates its options', () => {
    expect(() => revokeTokens(service, { accessToken: 'yes' as never })).toThrow(/"accessToken"/)
    expect(() => revokeTokens({ clientId: '', issuer: sts.issuer })).toThrow(/"clientId"/)
  })
})
