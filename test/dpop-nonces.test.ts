/**
 * DPoP nonces (RFC 9449 §8, §9) through every adapter entry, against a fake server that
 * requires them: the first send learns the origin's nonce (one retry, no grant), a nonce
 * rotated in the middle of a storm costs each affected request one retry and no grant, and
 * proofs go where tokens go.
 */
import {
  createEngine,
  dpopThumbprint,
  type Engine,
  generateDpopKeyPair,
  type TokenSet,
} from '@reauth/core'
import { createAuthServer } from '@reauth/msw'
import { HttpResponse, http } from 'msw'
import { setupServer } from 'msw/node'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { harnesses, type TestClient } from './support/harness.js'
import { createTestRefresh } from './support/refresh.js'

const API = 'https://api.dpop.test'
const OTHER = 'https://other.dpop.test'

const auth = createAuthServer({ accessTokenTtl: 60, dpop: { requireNonce: true } })
const otherHits: Array<{ authorization: string | null; dpop: string | null }> = []
const server = setupServer(
  ...auth.handlers,
  auth.protect('GET', `${API}/me`),
  http.get(`${OTHER}/public`, ({ request }) => {
    otherHits.push({
      authorization: request.headers.get('authorization'),
      dpop: request.headers.get('dpop'),
    })
    return HttpResponse.json({ ok: true })
  }),
)

beforeAll(() => server.listen({ onUnhandledRequest: 'error' }))
afterAll(() => server.close())

describe.each(harnesses)('DPoP nonces: $name', (harness) => {
  let engine: Engine
  let client: TestClient

  beforeEach(async () => {
    auth.reset()
    otherHits.length = 0
    const dpopKey = await generateDpopKeyPair()
    const tokens: TokenSet = {
      ...auth.signIn({ dpopJkt: await dpopThumbprint(dpopKey.publicKey) }),
      dpopKey,
    }
    engine = createEngine({ tokens, refresh: createTestRefresh(auth.tokenEndpoint) })
    client = harness.create(engine, API)
  })

  it('the first send learns the nonce: one retry, no grant; later sends carry it', async () => {
    expect((await client.request(`${API}/me`)).status).toBe(200)
    expect(auth.counters.dpop.nonceChallenges).toBe(1)
    expect((await client.request(`${API}/me`)).status).toBe(200)
    expect(auth.counters.dpop.nonceChallenges).toBe(1)
    expect(auth.counters.grants).toBe(0)
    expect(auth.counters.dpop.proofsRejected).toBe(0)
  })

  it('a nonce rotated mid-storm: one retry per affected request, no grant', async () => {
    expect((await client.request(`${API}/me`)).status).toBe(200)
    auth.rotateDpopNonce()
    const before = auth.counters.dpop.nonceChallenges
    const results = await Promise.all(Array.from({ length: 50 }, () => client.request(`${API}/me`)))
    expect(results.map((r) => r.status)).toEqual(Array(50).fill(200))
    // every request of the storm was sent with the old nonce: each retried once, none twice
    expect(auth.counters.dpop.nonceChallenges - before).toBe(50)
    expect(auth.counters.grants).toBe(0)
    expect(engine.stats().grants).toBe(0)
    expect((await client.request(`${API}/me`)).status).toBe(200)
    expect(auth.counters.dpop.nonceChallenges - before).toBe(50)
  })

  it('expired DPoP token: one grant with a proof and the token endpoint’s nonce, 0 reuse', async () => {
    auth.expireAccessTokens()
    const results = await Promise.all(Array.from({ length: 20 }, () => client.request(`${API}/me`)))
    expect(results.map((r) => r.status)).toEqual(Array(20).fill(200))
    expect(auth.counters.grants).toBe(1)
    expect(auth.counters.reuseDetected).toBe(0)
    expect((await engine.getToken())?.tokenType).toBe('DPoP')
  })

  it('no token and no proof to another origin', async () => {
    expect((await client.request(`${OTHER}/public`)).status).toBe(200)
    expect(otherHits).toEqual([{ authorization: null, dpop: null }])
  })
})
