import { ReauthOptionsError } from '@reauth/core'
import { HttpResponse } from 'msw'
import { setupServer } from 'msw/node'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
// The client side of DPoP, from core (the server's checks in ./dpop.ts share no code with it).
import { createDpopProof, dpopThumbprint, generateDpopKeyPair } from '../../core/src/dpop.js'
import { createAuthServer } from './auth-server.js'
import { base64url, CODE_VERIFIER, pkceChallenge } from './pkce.js'

const API = 'https://api.example.test/me'
const plain = createAuthServer({ issuer: 'https://plain.reauth.test' })
const auth = createAuthServer({ issuer: 'https://dpop.reauth.test', dpop: true })
const nonced = createAuthServer({
  issuer: 'https://nonce.reauth.test',
  dpop: { requireNonce: true },
})
const strict = createAuthServer({ issuer: 'https://strict.reauth.test', dpop: { required: true } })
/** A confidential client's server: client credentials, revocation and resources, with DPoP. */
const service = createAuthServer({
  issuer: 'https://service.reauth.test',
  clientId: 'job',
  clientSecret: 'job-secret',
  dpop: true,
})
const ORDERS = 'https://orders.example.test'
const servers = [plain, auth, nonced, strict, service]
const server = setupServer(
  ...servers.flatMap((s) => s.handlers),
  service.protect(
    'GET',
    `${ORDERS}/orders`,
    ({ token }) => HttpResponse.json({ jkt: token.jkt ?? null, audience: token.audience ?? null }),
    { resource: ORDERS },
  ),
  service.protect('GET', 'https://billing.example.test/invoices', undefined, {
    resource: 'https://billing.example.test',
  }),
  auth.protect('GET', API, ({ token }) => HttpResponse.json({ jkt: token.jkt ?? null })),
  nonced.protect('GET', 'https://nonce-api.example.test/me'),
  plain.protect('GET', 'https://plain-api.example.test/me'),
)
beforeAll(() => server.listen({ onUnhandledRequest: 'error' }))
afterEach(() => {
  for (const s of servers) s.reset()
  vi.useRealTimers()
})
afterAll(() => server.close())

const keyA = await generateDpopKeyPair()
const keyB = await generateDpopKeyPair()
const jktA = await dpopThumbprint(keyA.publicKey)

interface TokenBody {
  access_token: string
  token_type: string
  refresh_token?: string
  error?: string
  error_description?: string
}

async function proof(
  key: CryptoKeyPair,
  htu: string,
  more: { htm?: string; accessToken?: string; nonce?: string | undefined; now?: number } = {},
) {
  return createDpopProof(key, { htm: more.htm ?? 'POST', htu, ...more })
}

async function refresh(
  target: ReturnType<typeof createAuthServer>,
  refreshToken: string,
  dpop?: string,
): Promise<{ status: number; body: TokenBody; headers: Headers }> {
  const response = await fetch(target.tokenEndpoint, {
    method: 'POST',
    headers: dpop === undefined ? {} : { DPoP: dpop },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken }),
  })
  return { status: response.status, body: await response.json(), headers: response.headers }
}

function callApi(accessToken: string, headers: Record<string, string> = {}, url = API) {
  return fetch(url, { headers: { Authorization: `DPoP ${accessToken}`, ...headers } })
}

/** A compact JWS over any header and claims, signed by `key`: proofs a client would never make. */
async function forge(key: CryptoKeyPair, header: object, claims: object): Promise<string> {
  const encode = (value: object) => base64url(new TextEncoder().encode(JSON.stringify(value)))
  const input = `${encode(header)}.${encode(claims)}`
  const signature = await crypto.subtle.sign(
    { name: 'ECDSA', hash: 'SHA-256' },
    key.privateKey,
    new TextEncoder().encode(input),
  )
  return `${input}.${base64url(new Uint8Array(signature))}`
}

async function publicJwk(key: CryptoKeyPair) {
  const { kty, crv, x, y } = await crypto.subtle.exportKey('jwk', key.publicKey)
  return { kty, crv, x, y }
}

describe('token endpoint with dpop on', () => {
  it('binds the refreshed tokens to the proof key: token_type DPoP, protect() sees the jkt', async () => {
    const tokens = auth.signIn({ dpopJkt: jktA })
    const first = await refresh(
      auth,
      tokens.refreshToken as string,
      await proof(keyA, auth.tokenEndpoint),
    )
    expect(first.status).toBe(200)
    expect(first.body.token_type).toBe('DPoP')
    const accessToken = first.body.access_token
    const response = await callApi(accessToken, {
      DPoP: await proof(keyA, API, { htm: 'GET', accessToken }),
    })
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({ jkt: jktA })
    expect(auth.counters.dpop).toEqual({ proofsAccepted: 2, proofsRejected: 0, nonceChallenges: 0 })
    // The rotated refresh token is bound too: another key, or none, cannot use it.
    const next = first.body.refresh_token as string
    const stolen = await refresh(auth, next, await proof(keyB, auth.tokenEndpoint))
    expect(stolen).toMatchObject({ status: 400, body: { error: 'invalid_grant' } })
    expect(stolen.body.error_description).toBe('The refresh token is bound to another DPoP key')
    const bare = await refresh(auth, next)
    expect(bare).toMatchObject({ status: 400, body: { error: 'invalid_grant' } })
    // Neither spent it nor tripped reuse detection: the key holder still refreshes.
    expect(auth.counters.reuseDetected).toBe(0)
    const mine = await refresh(auth, next, await proof(keyA, auth.tokenEndpoint))
    expect(mine).toMatchObject({ status: 200, body: { token_type: 'DPoP' } })
  })

  it('a Bearer family refreshed with a proof gets a bound access token; its refresh token stays unbound', async () => {
    const tokens = auth.signIn()
    const first = await refresh(
      auth,
      tokens.refreshToken as string,
      await proof(keyA, auth.tokenEndpoint),
    )
    expect(first.body.token_type).toBe('DPoP')
    const bearer = await fetch(API, {
      headers: { Authorization: `Bearer ${first.body.access_token}` },
    })
    expect(bearer.status).toBe(401)
    const next = await refresh(auth, first.body.refresh_token as string)
    expect(next).toMatchObject({ status: 200, body: { token_type: 'Bearer' } })
  })

  it('issues Bearer tokens to a request without a proof (unless dpop.required)', async () => {
    const tokens = auth.signIn()
    expect((await refresh(auth, tokens.refreshToken as string)).body.token_type).toBe('Bearer')
    const other = strict.signIn()
    const refused = await refresh(strict, other.refreshToken as string)
    expect(refused).toMatchObject({ status: 400, body: { error: 'invalid_dpop_proof' } })
    expect(strict.presentedRefreshTokens).toEqual([])
    expect(strict.counters.dpop.proofsRejected).toBe(1)
  })

  it('a server without dpop ignores a proof and issues Bearer', async () => {
    const tokens = plain.signIn()
    const result = await refresh(
      plain,
      tokens.refreshToken as string,
      await proof(keyA, plain.tokenEndpoint),
    )
    expect(result.body.token_type).toBe('Bearer')
    expect(plain.counters.dpop.proofsAccepted).toBe(0)
    // And its protected routes take no DPoP scheme: a bare challenge, as for no credentials.
    const response = await callApi(
      result.body.access_token,
      {},
      'https://plain-api.example.test/me',
    )
    expect(response.status).toBe(401)
    expect(response.headers.get('www-authenticate')).toBe('Bearer realm="reauth-test"')
  })

  it('advertises ES256 for proofs in its metadata', async () => {
    const metadata = await (await fetch(`${auth.issuer}/.well-known/openid-configuration`)).json()
    expect(metadata.dpop_signing_alg_values_supported).toEqual(['ES256'])
    const none = await (await fetch(`${plain.issuer}/.well-known/openid-configuration`)).json()
    expect(none.dpop_signing_alg_values_supported).toBeUndefined()
  })

  it.each<[string, (htu: string) => Promise<string>, string]>([
    [
      'typ',
      async (htu) =>
        forge(keyA, { typ: 'JWT', alg: 'ES256', jwk: await publicJwk(keyA) }, claims(htu)),
      'The DPoP proof "typ" must be "dpop+jwt"',
    ],
    [
      'alg',
      async (htu) =>
        forge(keyA, { typ: 'dpop+jwt', alg: 'none', jwk: await publicJwk(keyA) }, claims(htu)),
      'The DPoP proof "alg" must be "ES256"',
    ],
    [
      'a private jwk',
      async (htu) => {
        const key = await generateDpopKeyPair({ extractable: true })
        const jwk = await crypto.subtle.exportKey('jwk', key.privateKey)
        return forge(key, { typ: 'dpop+jwt', alg: 'ES256', jwk }, claims(htu))
      },
      'The DPoP proof "jwk" must not contain a private key',
    ],
    [
      'the signature (signed by another key than its jwk)',
      async (htu) =>
        forge(keyB, { typ: 'dpop+jwt', alg: 'ES256', jwk: await publicJwk(keyA) }, claims(htu)),
      'The DPoP proof signature does not verify with its "jwk"',
    ],
    [
      'htm',
      (htu) => proof(keyA, htu, { htm: 'GET' }),
      'The DPoP proof "htm" does not match the request',
    ],
    [
      'htu',
      () => proof(keyA, 'https://dpop.reauth.test/oauth/other'),
      'The DPoP proof "htu" does not match the request',
    ],
    [
      'iat too old',
      (htu) => proof(keyA, htu, { now: Date.now() - 61_000 }),
      'The DPoP proof "iat" is not recent enough',
    ],
    [
      'iat in the future',
      (htu) => proof(keyA, htu, { now: Date.now() + 61_000 }),
      'The DPoP proof "iat" is not recent enough',
    ],
    [
      'jti missing',
      async (htu) => forge(keyA, header(await publicJwk(keyA)), { ...claims(htu), jti: undefined }),
      'The DPoP proof must have a "jti"',
    ],
    ['a non-JWS', async () => 'not.a.jws', 'The DPoP proof is not a readable JWS'],
  ])(
    'refuses a proof with a bad %s: 400 invalid_dpop_proof, the refresh token unspent',
    async (_, make, description) => {
      const tokens = auth.signIn()
      const result = await refresh(
        auth,
        tokens.refreshToken as string,
        await make(auth.tokenEndpoint),
      )
      expect(result).toMatchObject({
        status: 400,
        body: { error: 'invalid_dpop_proof', error_description: description },
      })
      expect(auth.counters.dpop).toEqual({
        proofsAccepted: 0,
        proofsRejected: 1,
        nonceChallenges: 0,
      })
      expect(auth.counters.failures).toBe(1)
      expect(auth.presentedRefreshTokens).toEqual([])
      const ok = await refresh(
        auth,
        tokens.refreshToken as string,
        await proof(keyA, auth.tokenEndpoint),
      )
      expect(ok.status).toBe(200)
    },
  )

  it('refuses a replayed proof (same jti): the second request is not processed', async () => {
    const tokens = auth.signIn()
    const once = await proof(keyA, auth.tokenEndpoint)
    expect((await refresh(auth, tokens.refreshToken as string, once)).status).toBe(200)
    const again = await refresh(auth, tokens.refreshToken as string, once)
    expect(again).toMatchObject({
      status: 400,
      body: {
        error: 'invalid_dpop_proof',
        error_description: 'The DPoP proof "jti" was already used',
      },
    })
    expect(auth.counters.reuseDetected).toBe(0)
  })

  it('takes iat against Date.now(), so fake timers move the window', async () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    vi.setSystemTime(Date.UTC(2031, 0, 1))
    const tokens = auth.signIn()
    const made = await proof(keyA, auth.tokenEndpoint)
    vi.setSystemTime(Date.now() + 60_000)
    expect((await refresh(auth, tokens.refreshToken as string, made)).status).toBe(200)
    const late = await proof(keyA, auth.tokenEndpoint)
    vi.setSystemTime(Date.now() + 61_000)
    expect((await refresh(auth, tokens.refreshToken as string, late)).body.error).toBe(
      'invalid_dpop_proof',
    )
  })
})

function header(jwk: object) {
  return { typ: 'dpop+jwt', alg: 'ES256', jwk }
}

function claims(htu: string) {
  return { jti: crypto.randomUUID(), htm: 'POST', htu, iat: Math.floor(Date.now() / 1000) }
}

describe('protect() with dpop on', () => {
  it('refuses a bound token sent as Bearer, a proof from another key, and a wrong ath', async () => {
    const tokens = auth.signIn({ dpopJkt: jktA })
    expect(tokens.tokenType).toBe('DPoP')
    const { accessToken } = tokens
    const bearer = await fetch(API, { headers: { Authorization: `Bearer ${accessToken}` } })
    expect(bearer.status).toBe(401)
    expect(bearer.headers.get('www-authenticate')).toContain('error="invalid_token"')
    const otherKey = await callApi(accessToken, {
      DPoP: await proof(keyB, API, { htm: 'GET', accessToken }),
    })
    expect(otherKey.status).toBe(401)
    expect(otherKey.headers.get('www-authenticate')).toBe(
      'DPoP algs="ES256", error="invalid_token", error_description="The access token is bound to another DPoP key"',
    )
    const wrongAth = await callApi(accessToken, {
      DPoP: await proof(keyA, API, { htm: 'GET', accessToken: 'some-other-token' }),
    })
    expect(wrongAth.status).toBe(401)
    expect(await wrongAth.json()).toEqual({
      error: 'invalid_dpop_proof',
      error_description: 'The DPoP proof "ath" does not match the access token',
    })
    const noProof = await callApi(accessToken)
    expect(noProof.headers.get('www-authenticate')).toContain('error="invalid_dpop_proof"')
    const wrongUrl = await callApi(accessToken, {
      DPoP: await proof(keyA, 'https://api.example.test/other', { htm: 'GET', accessToken }),
    })
    expect((await wrongUrl.json()).error_description).toBe(
      'The DPoP proof "htu" does not match the request',
    )
    // A query is not part of htu: a proof for the path fits the path with any query.
    const withQuery = await fetch(`${API}?page=2`, {
      headers: {
        Authorization: `DPoP ${accessToken}`,
        DPoP: await proof(keyA, API, { htm: 'GET', accessToken }),
      },
    })
    expect(withQuery.status).toBe(200)
    expect(auth.counters.routes[`GET ${API}`]).toEqual({ hits: 6, unauthorized: 5, forbidden: 0 })
    expect(auth.counters.dpop).toEqual({ proofsAccepted: 2, proofsRejected: 3, nonceChallenges: 0 })
  })

  it('answers no credentials with both challenges', async () => {
    const response = await fetch(API)
    expect(response.headers.get('www-authenticate')).toBe(
      'Bearer realm="reauth-test", DPoP algs="ES256"',
    )
  })

  it('keeps taking Bearer tokens that are not bound', async () => {
    const { accessToken } = auth.signIn()
    const response = await fetch(API, { headers: { Authorization: `Bearer ${accessToken}` } })
    expect(await response.json()).toEqual({ jkt: null })
    // …but not as DPoP: that token is not bound to the proof's key.
    const asDpop = await callApi(accessToken, {
      DPoP: await proof(keyA, API, { htm: 'GET', accessToken }),
    })
    expect((await asDpop.json()).error_description).toBe('The access token is not DPoP-bound')
  })

  it('signIn({ dpopJkt }) needs a DPoP server and a thumbprint', () => {
    expect(() => plain.signIn({ dpopJkt: jktA })).toThrow(
      'signIn(): "dpopJkt" needs a server with "dpop" on',
    )
    expect(() => auth.signIn({ dpopJkt: 'short' })).toThrow(ReauthOptionsError)
  })
})

describe('nonces (dpop: { requireNonce: true })', () => {
  it('token endpoint: use_dpop_nonce with the nonce, no failure, no refresh token presented; rotation', async () => {
    const tokens = nonced.signIn()
    const rt = tokens.refreshToken as string
    const challenged = await refresh(nonced, rt, await proof(keyA, nonced.tokenEndpoint))
    expect(challenged).toMatchObject({ status: 400, body: { error: 'use_dpop_nonce' } })
    const nonce = challenged.headers.get('dpop-nonce') as string
    expect(nonce).toMatch(/^[A-Za-z0-9_-]+$/)
    expect(nonced.presentedRefreshTokens).toEqual([])
    expect(nonced.counters.failures).toBe(0)
    const ok = await refresh(nonced, rt, await proof(keyA, nonced.tokenEndpoint, { nonce }))
    expect(ok).toMatchObject({ status: 200, body: { token_type: 'DPoP' } })
    expect(ok.headers.get('dpop-nonce')).toBe(nonce)
    expect(nonced.presentedRefreshTokens).toEqual([rt])

    const rotated = nonced.rotateDpopNonce()
    expect(rotated).not.toBe(nonce)
    const next = ok.body.refresh_token as string
    const stale = await refresh(nonced, next, await proof(keyA, nonced.tokenEndpoint, { nonce }))
    expect(stale).toMatchObject({
      status: 400,
      body: {
        error: 'use_dpop_nonce',
        error_description: 'The DPoP proof nonce is not the current one',
      },
    })
    expect(stale.headers.get('dpop-nonce')).toBe(rotated)
    const fresh = await refresh(
      nonced,
      next,
      await proof(keyA, nonced.tokenEndpoint, { nonce: rotated }),
    )
    expect(fresh.status).toBe(200)
    expect(nonced.counters.dpop).toEqual({
      proofsAccepted: 2,
      proofsRejected: 0,
      nonceChallenges: 2,
    })
    expect(nonced.counters.grants).toBe(2)
  })

  it('protect(): 401 with WWW-Authenticate DPoP error="use_dpop_nonce" and DPoP-Nonce', async () => {
    const url = 'https://nonce-api.example.test/me'
    const { accessToken } = nonced.signIn({ dpopJkt: jktA })
    const first = await callApi(
      accessToken,
      { DPoP: await proof(keyA, url, { htm: 'GET', accessToken }) },
      url,
    )
    expect(first.status).toBe(401)
    expect(first.headers.get('www-authenticate')).toBe(
      'DPoP algs="ES256", error="use_dpop_nonce", error_description="The authorization server requires a nonce in DPoP proofs"',
    )
    const nonce = first.headers.get('dpop-nonce') as string
    const second = await callApi(
      accessToken,
      { DPoP: await proof(keyA, url, { htm: 'GET', accessToken, nonce }) },
      url,
    )
    expect(second.status).toBe(200)
    expect(nonced.counters.dpop.nonceChallenges).toBe(1)
  })

  it('rotateDpopNonce() needs a server that requires nonces', () => {
    expect(() => auth.rotateDpopNonce()).toThrow(ReauthOptionsError)
  })
})

describe('authorization code bound with dpop_jkt', () => {
  const redirectUri = 'https://app.reauth.test/cb'

  async function code(dpopJkt?: string) {
    const verifier = 'v'.repeat(43)
    expect(CODE_VERIFIER.test(verifier)).toBe(true)
    const url = new URL(auth.authorizationEndpoint)
    url.search = new URLSearchParams({
      client_id: 'reauth-test',
      redirect_uri: redirectUri,
      response_type: 'code',
      code_challenge: await pkceChallenge(verifier),
      code_challenge_method: 'S256',
      ...(dpopJkt ? { dpop_jkt: dpopJkt } : {}),
    }).toString()
    const location = new URL(
      (await fetch(url, { redirect: 'manual' })).headers.get('location') as string,
    )
    return { code: location.searchParams.get('code') as string, verifier }
  }

  async function exchange(value: { code: string; verifier: string }, dpop?: string) {
    const response = await fetch(auth.tokenEndpoint, {
      method: 'POST',
      headers: dpop ? { DPoP: dpop } : {},
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code: value.code,
        code_verifier: value.verifier,
        redirect_uri: redirectUri,
        client_id: 'reauth-test',
      }),
    })
    return { status: response.status, body: (await response.json()) as TokenBody }
  }

  it('only the dpop_jkt key exchanges the code', async () => {
    const bound = await code(jktA)
    expect(await exchange(bound, await proof(keyB, auth.tokenEndpoint))).toMatchObject({
      status: 400,
      body: { error: 'invalid_grant' },
    })
    expect(await exchange(bound)).toMatchObject({ status: 400, body: { error: 'invalid_grant' } })
    expect(await exchange(bound, await proof(keyA, auth.tokenEndpoint))).toMatchObject({
      status: 200,
      body: { token_type: 'DPoP' },
    })
  })

  it('a code without dpop_jkt exchanged with a proof gives DPoP tokens; without, Bearer', async () => {
    expect(
      (await exchange(await code(), await proof(keyB, auth.tokenEndpoint))).body.token_type,
    ).toBe('DPoP')
    expect((await exchange(await code())).body.token_type).toBe('Bearer')
  })
})

describe('DPoP with client credentials, resource indicators and revocation', () => {
  const basic = `Basic ${btoa('job:job-secret')}`
  const ordersUrl = `${ORDERS}/orders`

  async function grant(params: Record<string, string>, dpop?: string) {
    const response = await fetch(service.tokenEndpoint, {
      method: 'POST',
      headers: { authorization: basic, ...(dpop === undefined ? {} : { DPoP: dpop }) },
      body: new URLSearchParams(params),
    })
    return { status: response.status, body: (await response.json()) as TokenBody }
  }

  async function call(accessToken: string, key: CryptoKeyPair | undefined, url = ordersUrl) {
    const headers: Record<string, string> = key
      ? {
          Authorization: `DPoP ${accessToken}`,
          DPoP: await proof(key, url, { htm: 'GET', accessToken }),
        }
      : { Authorization: `Bearer ${accessToken}` }
    return fetch(url, { headers })
  }

  it('a client credentials grant with a proof and a resource: a bound token for that audience only', async () => {
    const issued = await grant(
      { grant_type: 'client_credentials', resource: ORDERS },
      await proof(keyA, service.tokenEndpoint),
    )
    expect(issued).toMatchObject({ status: 200, body: { token_type: 'DPoP' } })
    const accessToken = issued.body.access_token
    const ok = await call(accessToken, keyA)
    expect(ok.status).toBe(200)
    expect(await ok.json()).toEqual({ jkt: jktA, audience: ORDERS })
    expect((await call(accessToken, undefined)).status).toBe(401) // bound: not as Bearer
    expect((await call(accessToken, keyB)).status).toBe(401) // another key
    // With its key, at another resource server: not its audience.
    const elsewhere = await call(accessToken, keyA, 'https://billing.example.test/invoices')
    expect(elsewhere.status).toBe(401)
    expect(elsewhere.headers.get('www-authenticate')).toContain('DPoP')
    expect(service.counters).toMatchObject({
      clientCredentialsGrants: 1,
      resourceGrants: { [ORDERS]: 1 },
    })
    // Without a proof: a Bearer token, as before.
    const bearer = await grant({ grant_type: 'client_credentials', resource: ORDERS })
    expect(bearer).toMatchObject({ status: 200, body: { token_type: 'Bearer' } })
    expect((await call(bearer.body.access_token, undefined)).status).toBe(200)
  })

  it('a bound family refreshed per resource; revoking its refresh token ends it', async () => {
    const tokens = service.signIn({ dpopJkt: jktA, resources: [ORDERS] })
    const refreshToken = tokens.refreshToken as string
    const params = { grant_type: 'refresh_token', refresh_token: refreshToken }
    // A resource the sign-in was not granted, with the right key: invalid_target.
    const other = await grant(
      { ...params, resource: 'https://billing.example.test' },
      await proof(keyA, service.tokenEndpoint),
    )
    expect(other).toMatchObject({ status: 400, body: { error: 'invalid_target' } })
    // The granted resource without the key: invalid_grant.
    const stolen = await grant(
      { ...params, resource: ORDERS },
      await proof(keyB, service.tokenEndpoint),
    )
    expect(stolen).toMatchObject({ status: 400, body: { error: 'invalid_grant' } })
    const fresh = await grant(
      { ...params, resource: ORDERS },
      await proof(keyA, service.tokenEndpoint),
    )
    expect(fresh).toMatchObject({ status: 200, body: { token_type: 'DPoP' } })
    expect((await call(fresh.body.access_token, keyA)).status).toBe(200)
    const revoked = await fetch(service.revocationEndpoint, {
      method: 'POST',
      headers: { authorization: basic },
      body: new URLSearchParams({
        token: fresh.body.refresh_token as string,
        token_type_hint: 'refresh_token',
      }),
    })
    expect(revoked.status).toBe(200)
    expect(service.counters.revocations).toBe(1)
    expect((await call(fresh.body.access_token, keyA)).status).toBe(401)
    const after = await grant(
      { ...params, refresh_token: fresh.body.refresh_token as string, resource: ORDERS },
      await proof(keyA, service.tokenEndpoint),
    )
    expect(after).toMatchObject({ status: 400, body: { error: 'invalid_grant' } })
  })
})
