/**
 * DPoP (RFC 9449) end to end, with the oauth functions called directly (the engine and
 * adapters are wired separately): a real OpenID Provider (oidc-provider with `features.dPoP`)
 * binds the tokens to the client's key, and the testbed API checks every proof and the token's
 * `cnf.jkt` with code of its own. Nothing about the protocol is faked.
 */
import { isOAuthError, type RefreshContext, type TokenSet } from '@reauth/core'
import { createRefreshGrant } from '@reauth/oauth'
import {
  clientOptions,
  RESOURCE_SCOPE,
  RESOURCES,
  type RunningApi,
  type RunningProvider,
  signInOverHttp,
  startApi,
  startProvider,
} from '@reauth/testbed'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
// core's DPoP primitives (exported from '@reauth/core' once the engine is wired).
import {
  createDpopProof,
  dpopThumbprint,
  generateDpopKeyPair,
} from '../../packages/core/src/dpop.js'

let provider: RunningProvider
let nonceProvider: RunningProvider
let api: RunningApi

beforeAll(async () => {
  provider = await startProvider()
  nonceProvider = await startProvider({ dpop: { requireNonce: true } })
  api = await startApi({ issuer: provider.issuer })
})
afterAll(async () => {
  await api?.stop()
  await provider?.stop()
  await nonceProvider?.stop()
})
afterEach(() => {
  vi.useRealTimers()
})

function context(tokens: TokenSet, dpop: CryptoKeyPair): RefreshContext {
  return { tokens, signal: new AbortController().signal, startedAt: Date.now(), dpop }
}

/** Token endpoint requests the client sent, with their status and whether they carried a proof. */
function recordingFetch() {
  const sent: Array<{ status: number; proof: boolean; nonce: boolean }> = []
  const fetcher: typeof fetch = async (input, init) => {
    const response = await fetch(input, init)
    const url = new URL(input instanceof Request ? input.url : String(input))
    if (url.pathname === '/token') {
      const proof = new Headers(init?.headers).get('dpop')
      const claims = proof
        ? JSON.parse(Buffer.from(proof.split('.')[1] ?? '', 'base64url').toString())
        : {}
      sent.push({
        status: response.status,
        proof: proof !== null,
        nonce: typeof claims.nonce === 'string',
      })
    }
    return response
  }
  return { sent, fetch: fetcher }
}

async function callApi(accessToken: string, headers: Record<string, string>, path = '/orders') {
  const response = await fetch(`${api.origin}${path}`, {
    headers: { Authorization: `DPoP ${accessToken}`, ...headers },
  })
  return { status: response.status, challenge: response.headers.get('www-authenticate') }
}

describe('e2e DPoP: oidc-provider + the testbed API', () => {
  it('code + PKCE sign-in with DPoP → DPoP-bound tokens the API accepts only with a proof from the key', async () => {
    const key = await generateDpopKeyPair()
    const other = await generateDpopKeyPair()
    const before = provider.counters.dpopGrants
    const apiBefore = { ...api.counters }
    const tokens = await signInOverHttp(provider.issuer, { dpop: key })
    expect(tokens.tokenType).toBe('DPoP')
    expect(provider.counters.dpopGrants - before).toBe(1)
    const { accessToken } = tokens
    const url = `${api.origin}/orders?page=1`
    const proof = await createDpopProof(key, { htm: 'GET', htu: url, accessToken })
    expect((await callApi(accessToken, { DPoP: proof }, '/orders?page=1')).status).toBe(200)
    // The same proof again: its jti was used.
    const replay = await callApi(accessToken, { DPoP: proof }, '/orders?page=1')
    expect(replay.status).toBe(401)
    expect(replay.challenge).toContain('error="invalid_dpop_proof"')
    // Another key's proof: the token's cnf.jkt is not that key's.
    const stolen = await callApi(accessToken, {
      DPoP: await createDpopProof(other, { htm: 'GET', htu: url, accessToken }),
    })
    expect(stolen).toMatchObject({ status: 401 })
    expect(stolen.challenge).toContain('error="invalid_token"')
    // As a Bearer token, or with a proof for another method: refused.
    const bearer = await fetch(`${api.origin}/orders`, {
      headers: { Authorization: `Bearer ${accessToken}` },
    })
    expect(bearer.status).toBe(401)
    const wrongMethod = await callApi(accessToken, {
      DPoP: await createDpopProof(key, { htm: 'POST', htu: url, accessToken }),
    })
    expect(wrongMethod.status).toBe(401)
    // A proof for another token (ath), and one whose signature is not its jwk's key.
    const otherToken = await callApi(accessToken, {
      DPoP: await createDpopProof(key, { htm: 'GET', htu: url, accessToken: 'another-token' }),
    })
    expect(otherToken.challenge).toContain('error="invalid_dpop_proof"')
    const [head, body] = (await createDpopProof(key, { htm: 'GET', htu: url, accessToken })).split(
      '.',
    )
    const foreign = (await createDpopProof(other, { htm: 'GET', htu: url, accessToken })).split(
      '.',
    )[2]
    const forged = await callApi(accessToken, { DPoP: `${head}.${body}.${foreign}` })
    expect(forged.challenge).toContain('error="invalid_dpop_proof"')
    expect(api.counters.dpopAccepted - apiBefore.dpopAccepted).toBe(1)
    expect(api.counters.dpopRejected - apiBefore.dpopRejected).toBe(5)
  })

  it('refresh with a proof from the key → new DPoP tokens; from another key → invalid_grant', async () => {
    const key = await generateDpopKeyPair()
    const other = await generateDpopKeyPair()
    const tokens = await signInOverHttp(provider.issuer, { dpop: key })
    const recorder = recordingFetch()
    const refresh = createRefreshGrant({ ...clientOptions(provider.issuer), fetch: recorder.fetch })
    const revokedBefore = provider.counters.grantsRevoked
    const stolen = await refresh(context(tokens, other)).catch((error: unknown) => error)
    expect(isOAuthError(stolen) && stolen.error).toBe('invalid_grant')
    const fresh = await refresh(context(tokens, key))
    expect(fresh.tokenType).toBe('DPoP')
    expect(fresh.refreshToken).not.toBe(tokens.refreshToken)
    expect(provider.counters.grantsRevoked - revokedBefore).toBe(0)
    expect(recorder.sent.map((r) => [r.status, r.proof])).toEqual([
      [400, true],
      [200, true],
    ])
    const proof = await createDpopProof(key, {
      htm: 'GET',
      htu: `${api.origin}/orders`,
      accessToken: fresh.accessToken,
    })
    expect((await callApi(fresh.accessToken, { DPoP: proof })).status).toBe(200)
    expect(await dpopThumbprint(key.publicKey)).toMatch(/^[\w-]{43}$/)
  })

  it('with resource indicators: a bound token per resource (a JWT with cnf.jkt, an opaque one by introspection), each taken by its own API only with a proof', async () => {
    const key = await generateDpopKeyPair()
    const jkt = await dpopThumbprint(key.publicKey)
    const billing = await startApi({
      issuer: provider.issuer,
      audience: RESOURCES.billing.indicator,
    })
    const orders = await startApi({ issuer: provider.issuer, audience: RESOURCES.orders.indicator })
    try {
      let tokens = await signInOverHttp(provider.issuer, {
        dpop: key,
        scope: `openid ${RESOURCE_SCOPE}`,
        resource: [RESOURCES.billing.indicator, RESOURCES.orders.indicator],
      })
      const refresh = createRefreshGrant(clientOptions(provider.issuer))
      const call = async (target: RunningApi, accessToken: string, scheme = 'DPoP') => {
        const url = `${target.origin}/orders`
        const proof = await createDpopProof(key, { htm: 'GET', htu: url, accessToken })
        const response = await fetch(url, {
          headers: {
            Authorization: `${scheme} ${accessToken}`,
            ...(scheme === 'DPoP' ? { DPoP: proof } : {}),
          },
        })
        return response.status
      }
      // billing's tokens are JWTs: the API reads cnf.jkt from the verified claims.
      const forBilling = await refresh({
        ...context(tokens, key),
        resource: RESOURCES.billing.indicator,
      })
      expect(forBilling.tokenType).toBe('DPoP')
      const claims = JSON.parse(
        Buffer.from(forBilling.accessToken.split('.')[1] ?? '', 'base64url').toString(),
      )
      expect(claims).toMatchObject({ aud: RESOURCES.billing.indicator, cnf: { jkt } })
      expect(await call(billing, forBilling.accessToken)).toBe(200)
      expect(await call(billing, forBilling.accessToken, 'Bearer')).toBe(401)
      expect(await call(orders, forBilling.accessToken)).toBe(401)
      tokens = { ...tokens, ...forBilling }
      // orders' tokens are opaque: cnf.jkt comes from introspection.
      const forOrders = await refresh({
        ...context(tokens, key),
        resource: RESOURCES.orders.indicator,
      })
      expect(forOrders.tokenType).toBe('DPoP')
      expect(forOrders.accessToken.split('.')).toHaveLength(1)
      expect(await call(orders, forOrders.accessToken)).toBe(200)
      expect(await call(orders, forOrders.accessToken, 'Bearer')).toBe(401)
      expect(await call(billing, forOrders.accessToken)).toBe(401)
      expect(billing.counters).toMatchObject({
        ok: 1,
        // the Bearer send (not a DPoP request) and the other resource's token
        unauthorized: 2,
        wrongAudience: 1,
        dpopAccepted: 1,
        dpopRejected: 0,
      })
      expect(orders.counters).toMatchObject({
        ok: 1,
        // the Bearer send (not a DPoP request) and the other resource's token
        unauthorized: 2,
        wrongAudience: 1,
        dpopAccepted: 1,
        dpopRejected: 0,
      })
    } finally {
      await billing.stop()
      await orders.stop()
    }
  })

  it('nonces required: each token request without the current nonce costs one retry, no failure', async () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    const key = await generateDpopKeyPair()
    const errorsBefore = { ...nonceProvider.counters.grantErrors }
    const recorder = recordingFetch()
    // The code exchange: a proof without a nonce is answered use_dpop_nonce, then sent again.
    const tokens = await signInOverHttp(nonceProvider.issuer, { dpop: key, fetch: recorder.fetch })
    expect(tokens.tokenType).toBe('DPoP')
    expect(recorder.sent).toEqual([
      { status: 400, proof: true, nonce: false },
      { status: 200, proof: true, nonce: true },
    ])
    const refresh = createRefreshGrant({
      ...clientOptions(nonceProvider.issuer),
      fetch: recorder.fetch,
    })
    // The exchange left the nonce with the key's DPoP handle: no retry now.
    const first = await refresh(context(tokens, key))
    expect(recorder.sent.slice(2)).toEqual([{ status: 200, proof: true, nonce: true }])
    // oidc-provider's nonces rotate with its clock: an hour later the nonce is stale.
    vi.setSystemTime(Date.now() + 3600_000)
    const second = await refresh(context(first, key))
    expect(second.tokenType).toBe('DPoP')
    expect(recorder.sent.slice(3)).toEqual([
      { status: 400, proof: true, nonce: true },
      { status: 200, proof: true, nonce: true },
    ])
    expect(nonceProvider.counters.grantsRevoked).toBe(0)
    // Only use_dpop_nonce answers, never invalid_grant: no refresh token was spent twice.
    const errors = Object.fromEntries(
      Object.entries(nonceProvider.counters.grantErrors).map(([k, v]) => [
        k,
        v - (errorsBefore[k] ?? 0),
      ]),
    )
    expect(errors.invalid_grant ?? 0).toBe(0)
  })
})
