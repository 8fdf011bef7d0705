import { inspect } from 'node:util'
import {
  isOAuthError,
  isReauthOptionsError,
  isRefreshError,
  type RefreshContext,
  type TokenSet,
} from '@reauth/core'
import { createAuthServer } from '@reauth/msw'
import { HttpResponse, http } from 'msw'
import { setupServer } from 'msw/node'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
// core's DPoP primitives (not exported from '@reauth/core' until the engine is wired).
import { createDpopProof, dpopThumbprint, generateDpopKeyPair } from '../../core/src/dpop.js'
import { issuedRefreshToken } from '../../core/src/errors.js'
import { beginSignIn, completeSignIn, createRefreshGrant, type SignInOptions } from './index.js'

const API = 'https://api.dpop.reauth.test/me'
const auth = createAuthServer({ issuer: 'https://dpop.reauth.test', dpop: true })
const nonced = createAuthServer({
  issuer: 'https://nonce.reauth.test',
  dpop: { requireNonce: true },
})
const plain = createAuthServer({ issuer: 'https://plain.reauth.test' })
/** A token endpoint that always wants another nonce. */
const GREEDY = 'https://greedy.reauth.test'
const sentProofs: string[] = []
let greedyRequests = 0
const server = setupServer(
  http.post(`${GREEDY}/token`, () => {
    greedyRequests++
    return HttpResponse.json(
      { error: 'use_dpop_nonce', error_description: 'another nonce' },
      { status: 400, headers: { 'DPoP-Nonce': `n${greedyRequests}` } },
    )
  }),
  ...auth.handlers,
  ...nonced.handlers,
  ...plain.handlers,
  auth.protect('GET', API),
)
server.events.on('request:start', ({ request }) => {
  const proof = request.headers.get('dpop')
  if (proof) sentProofs.push(proof)
})
beforeAll(() => server.listen({ onUnhandledRequest: 'error' }))
afterEach(() => {
  for (const s of [auth, nonced, plain]) s.reset()
  sentProofs.length = 0
  greedyRequests = 0
})
afterAll(() => server.close())

const keyA = await generateDpopKeyPair()
const keyB = await generateDpopKeyPair()

function context(tokens: TokenSet, dpop?: CryptoKeyPair): RefreshContext {
  return { tokens, signal: new AbortController().signal, startedAt: Date.now(), dpop }
}

function claimsOf(proof: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(proof.split('.')[1] as string, 'base64url').toString())
}

async function failure(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected a failure')
    },
    (error: unknown) => error,
  )
}

describe('createRefreshGrant with context.dpop', () => {
  it('sends a proof for the token endpoint and returns a DPoP set the API accepts', async () => {
    const refresh = createRefreshGrant({ issuer: auth.issuer, clientId: 'reauth-test' })
    const tokens = await refresh(
      context(auth.signIn({ dpopJkt: await dpopThumbprint(keyA.publicKey) }), keyA),
    )
    expect(tokens.tokenType).toBe('DPoP')
    expect(sentProofs).toHaveLength(1)
    expect(claimsOf(sentProofs[0] as string)).toMatchObject({
      htm: 'POST',
      htu: auth.tokenEndpoint,
    })
    expect(claimsOf(sentProofs[0] as string).ath).toBeUndefined()
    expect(auth.counters.dpop).toEqual({ proofsAccepted: 1, proofsRejected: 0, nonceChallenges: 0 })
    const response = await fetch(API, {
      headers: {
        Authorization: `DPoP ${tokens.accessToken}`,
        DPoP: await createDpopProof(keyA, {
          htm: 'GET',
          htu: API,
          accessToken: tokens.accessToken,
        }),
      },
    })
    expect(response.status).toBe(200)
  })

  it('sends no proof without a key pair (Bearer)', async () => {
    const refresh = createRefreshGrant({ issuer: auth.issuer, clientId: 'reauth-test' })
    const tokens = await refresh(context(auth.signIn()))
    expect(tokens.tokenType).toBe('Bearer')
    expect(sentProofs).toEqual([])
  })

  it('use_dpop_nonce: sent again once with the nonce; no failure, the refresh token presented once', async () => {
    const refresh = createRefreshGrant({ issuer: nonced.issuer, clientId: 'reauth-test' })
    const signedIn = nonced.signIn({ dpopJkt: await dpopThumbprint(keyA.publicKey) })
    const first = await refresh(context(signedIn, keyA))
    expect(first.tokenType).toBe('DPoP')
    expect(nonced.counters).toMatchObject({ tokenRequests: 2, grants: 1, failures: 0 })
    expect(nonced.counters.dpop.nonceChallenges).toBe(1)
    expect(nonced.presentedRefreshTokens).toEqual([signedIn.refreshToken])
    expect(claimsOf(sentProofs[0] as string).nonce).toBeUndefined()
    expect(claimsOf(sentProofs[1] as string).nonce).toEqual(expect.any(String))
    // The nonce is remembered for this key pair: the next refresh needs no round trip…
    const second = await refresh(context(first, keyA))
    expect(nonced.counters).toMatchObject({ tokenRequests: 3, grants: 2 })
    // …until the server rotates it: one more retry, still no failure.
    nonced.rotateDpopNonce()
    await refresh(context(second, keyA))
    expect(nonced.counters).toMatchObject({ tokenRequests: 5, grants: 3, failures: 0 })
    expect(nonced.counters.dpop.nonceChallenges).toBe(2)
    expect(nonced.counters.reuseDetected).toBe(0)
  })

  it('a second use_dpop_nonce in a row is an OAuthError, after exactly two requests', async () => {
    const refresh = createRefreshGrant({
      server: { issuer: GREEDY, token_endpoint: `${GREEDY}/token` },
      clientId: 'reauth-test',
    })
    const error = await failure(
      refresh(context({ accessToken: 'a', tokenType: 'DPoP', refreshToken: 'rt-SECRET' }, keyA)),
    )
    expect(isOAuthError(error) && error.error).toBe('use_dpop_nonce')
    expect(greedyRequests).toBe(2)
    expect(claimsOf(sentProofs[1] as string).nonce).toBe('n1')
    const printed = inspect(error, { depth: 10, showHidden: true })
    expect(printed).not.toContain('rt-SECRET')
    for (const proof of sentProofs) expect(printed).not.toContain(proof)
  })

  it('a refresh token bound to another key: invalid_grant (the engine ends the session)', async () => {
    const refresh = createRefreshGrant({ issuer: auth.issuer, clientId: 'reauth-test' })
    const signedIn = auth.signIn({ dpopJkt: await dpopThumbprint(keyA.publicKey) })
    const error = await failure(refresh(context(signedIn, keyB)))
    expect(isOAuthError(error) && error.error).toBe('invalid_grant')
  })

  it('a DPoP token_type without a proof is a malformed response; its new refresh token is kept', async () => {
    const refresh = createRefreshGrant({ issuer: plain.issuer, clientId: 'reauth-test' })
    plain.enqueue({ type: 'ok', body: { token_type: 'DPoP' } })
    const error = await failure(refresh(context(plain.signIn())))
    expect(isRefreshError(error) && error.field).toBe('token_type')
    expect((error as Error).message).toBe(
      'Malformed token response: "token_type" is "DPoP" but the request had no DPoP proof',
    )
    expect(issuedRefreshToken(error)).toEqual(expect.stringMatching(/^rt_/))
  })

  it('a Bearer answer to a proof is accepted (a server may not bind)', async () => {
    const refresh = createRefreshGrant({ issuer: plain.issuer, clientId: 'reauth-test' })
    const tokens = await refresh(context(plain.signIn(), keyA))
    expect(tokens.tokenType).toBe('Bearer')
    expect(sentProofs).toHaveLength(1)
  })

  it('a key pair oauth4webapi cannot sign with is a ReauthOptionsError', async () => {
    const refresh = createRefreshGrant({ issuer: auth.issuer, clientId: 'reauth-test' })
    const error = await failure(
      refresh(context(auth.signIn(), { publicKey: keyA.publicKey } as CryptoKeyPair)),
    )
    expect(isReauthOptionsError(error)).toBe(true)
  })
})

describe('sign-in with DPoP', () => {
  const redirectUri = 'https://app.reauth.test/callback'
  const optionsFor = (issuer: string, more: Partial<SignInOptions> = {}): SignInOptions => ({
    issuer,
    clientId: 'reauth-test',
    redirectUri,
    scope: 'offline_access',
    ...more,
  })

  async function signIn(begin: SignInOptions, complete: SignInOptions = begin) {
    const request = await beginSignIn(begin)
    const location = (await fetch(request.url, { redirect: 'manual' })).headers.get('location')
    return {
      request,
      tokens: completeSignIn(complete, { callbackUrl: location as string, ...request }),
    }
  }

  it('beginSignIn sends dpop_jkt; completeSignIn exchanges the code with a proof for DPoP tokens', async () => {
    const { request, tokens } = await signIn(optionsFor(auth.issuer, { dpop: keyA }))
    expect(request.url.searchParams.get('dpop_jkt')).toBe(await dpopThumbprint(keyA.publicKey))
    const set = await tokens
    expect(set.tokenType).toBe('DPoP')
    expect(auth.counters.codeGrants).toBe(1)
    // The refresh token is bound to the key from the first exchange on.
    const refresh = createRefreshGrant({ issuer: auth.issuer, clientId: 'reauth-test' })
    expect(isOAuthError(await failure(refresh(context(set, keyB))))).toBe(true)
    expect((await refresh(context(set, keyA))).tokenType).toBe('DPoP')
  })

  it('the code bound by dpop_jkt cannot be exchanged with another key', async () => {
    const { tokens } = await signIn(
      optionsFor(auth.issuer, { dpopJkt: await dpopThumbprint(keyA.publicKey) }),
      optionsFor(auth.issuer, { dpop: keyB }),
    )
    const error = await failure(tokens)
    expect(isOAuthError(error) && error.error).toBe('invalid_grant')
  })

  it('a server that requires nonces: the code exchange is sent again once', async () => {
    const fresh = await generateDpopKeyPair() // no nonce remembered for it yet
    const { tokens } = await signIn(optionsFor(nonced.issuer, { dpop: fresh }))
    expect((await tokens).tokenType).toBe('DPoP')
    expect(nonced.counters).toMatchObject({ tokenRequests: 2, codeGrants: 1, failures: 0 })
    expect(nonced.counters.dpop.nonceChallenges).toBe(1)
  })

  it.each<[Partial<SignInOptions>, string]>([
    [{ dpopJkt: 'nope' }, '"dpopJkt" must be a JWK SHA-256 thumbprint (43 base64url characters)'],
    [{ dpop: {} as CryptoKeyPair }, '"dpop" must be a CryptoKeyPair'],
    [{ dpop: keyA, dpopJkt: 'a'.repeat(43) }, '"dpopJkt" and "dpop" cannot both be given'],
    [
      { parameters: { dpop_jkt: 'a'.repeat(43) } },
      '"parameters.dpop_jkt" is not allowed: use the "dpop" (or "dpopJkt") option',
    ],
  ])('rejects %j with a ReauthOptionsError', async (more, message) => {
    const error = await failure(beginSignIn(optionsFor(auth.issuer, more)))
    expect(isReauthOptionsError(error)).toBe(true)
    expect((error as Error).message).toContain(message)
  })
})
