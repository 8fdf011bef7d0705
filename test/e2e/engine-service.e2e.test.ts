/**
 * Issue 16 through the engine and an adapter, end to end against oidc-provider (in process on
 * 127.0.0.1): `createEngine({ revoke })` at sign-out, `createEngine({ resources })` under a
 * storm across three resource servers, and `createEngine({ acquire })` for client credentials.
 * service.e2e.test.ts calls @reauth/oauth's functions directly; here every token goes through
 * `createFetch`, and the provider's and the APIs' counters are the witnesses.
 *
 * Time: only `Date` is faked (the provider's token expiry and the engine's clock move
 * together); nothing waits for real time.
 */
import { createEngine, type EngineEvents, isOAuthError, type TokenSet } from '@reauth/core'
import { createFetch } from '@reauth/fetch'
import { clientCredentials, createRefreshGrant, revokeTokens } from '@reauth/oauth'
import {
  clientOptions,
  RESOURCE_SCOPE,
  RESOURCES,
  type RunningApi,
  type RunningProvider,
  SERVICE_CLIENT,
  signInOverHttp,
  startApi,
  startProvider,
  storeWithoutExpiry,
} from '@reauth/testbed'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { deferred } from '../support/deferred.js'

const TTL = 30
let provider: RunningProvider
/** An API that takes any valid token. */
let anyAudience: RunningApi
/** One API per resource, each accepting only its own audience. */
const apis = {} as Record<keyof typeof RESOURCES, RunningApi>
const names = Object.keys(RESOURCES) as Array<keyof typeof RESOURCES>

beforeAll(async () => {
  provider = await startProvider({ accessTokenTtl: TTL })
  anyAudience = await startApi({ issuer: provider.issuer })
  for (const name of names) {
    apis[name] = await startApi({ issuer: provider.issuer, audience: RESOURCES[name].indicator })
  }
})
afterAll(async () => {
  await Promise.all([anyAudience, ...Object.values(apis)].map((api) => api?.stop()))
  await provider?.stop()
})
afterEach(() => {
  vi.useRealTimers()
})

const service = () => ({
  issuer: provider.issuer,
  clientId: SERVICE_CLIENT.id,
  clientSecret: SERVICE_CLIENT.secret,
  allowInsecureRequests: true,
})

async function statuses(responses: Array<Promise<Response>>): Promise<number[]> {
  return Promise.all(
    responses.map(async (pending) => {
      const response = await pending
      await response.arrayBuffer()
      return response.status
    }),
  )
}

describe('engine.clear() with revoke (RFC 7009) against oidc-provider', () => {
  it('signs out locally, revokes at the provider (signOut revoked: true); the refresh token is then refused invalid_grant', async () => {
    const tokens = await signInOverHttp(provider.issuer)
    const client = clientOptions(provider.issuer)
    const engine = createEngine({
      tokens,
      refresh: createRefreshGrant(client),
      revoke: revokeTokens(client),
    })
    const api = createFetch(engine, { origins: [anyAudience.origin] })
    expect(await statuses([api(`${anyAudience.origin}/orders`)])).toEqual([200])

    const signedOut = deferred<EngineEvents['signOut']>()
    engine.on('signOut', (event) => signedOut.resolve(event))
    // the engine may have rotated nothing yet: what it holds is what the provider must refuse
    const held = (await engine.getToken()) as TokenSet
    await engine.clear()
    expect(await signedOut.promise).toEqual({ revoked: true })
    expect(await engine.getToken()).toBeUndefined()

    // locally: the next request goes anonymous and the API answers 401, with no grant tried
    const grantsBefore = provider.counters.refreshGrants
    expect(await statuses([api(`${anyAudience.origin}/orders`)])).toEqual([401])
    expect(provider.counters.refreshGrants).toBe(grantsBefore)

    // at the provider: the revoked refresh token is refused, the revoked access token too
    const errorsBefore = provider.counters.grantErrors.invalid_grant ?? 0
    const error = await createRefreshGrant(client)({
      tokens: held,
      signal: AbortSignal.timeout(10_000),
      startedAt: Date.now(),
    }).then(
      () => undefined,
      (thrown: unknown) => thrown,
    )
    expect(isOAuthError(error)).toBe(true)
    expect(error).toMatchObject({ error: 'invalid_grant' })
    expect((provider.counters.grantErrors.invalid_grant ?? 0) - errorsBefore).toBe(1)
    const direct = await fetch(`${anyAudience.origin}/orders`, {
      headers: { authorization: `Bearer ${held.accessToken}` },
    })
    await direct.arrayBuffer()
    expect(direct.status).toBe(401)
  })
})

describe('engine with resources (RFC 8707) against oidc-provider', () => {
  it.each([
    { mode: 'expiry known: the expired tokens are refreshed before the send', reactive: false },
    { mode: 'expiry unknown: every request meets a 401 from its API', reactive: true },
  ])(
    'a storm across three APIs, then again after expiry ($mode): one grant per resource per expiry, 0 reuse, each API only its own audience',
    async ({ reactive }) => {
      vi.useFakeTimers({ toFake: ['Date'] })
      const indicators = names.map((name) => RESOURCES[name].indicator)
      const tokens = await signInOverHttp(provider.issuer, {
        scope: `openid ${RESOURCE_SCOPE}`,
        resource: indicators,
      })
      const resources = Object.fromEntries(
        names.map((name) => [apis[name].origin, RESOURCES[name].indicator]),
      )
      const refresh = createRefreshGrant(clientOptions(provider.issuer))
      const engine = reactive
        ? createEngine({ store: storeWithoutExpiry(), refresh, resources })
        : createEngine({ tokens, refresh, resources })
      if (reactive) await engine.setTokens(tokens)
      // no `origins`: the resources' origins are the allowed ones
      const api = createFetch(engine)

      const revokedBefore = provider.counters.grantsRevoked
      const errorsBefore = { ...provider.counters.grantErrors }
      const wrongBefore = names.map((name) => apis[name].counters.wrongAudience)
      const unauthorizedBefore = names.map((name) => apis[name].counters.unauthorized)
      const grantsPerPhase: number[][] = []
      for (let phase = 0; phase < 2; phase++) {
        // phase 0: the sign-in holds no per-resource token yet; phase 1: every one has expired
        if (phase === 1) vi.setSystemTime(Date.now() + (TTL + 1) * 1000)
        const before = indicators.map((i) => provider.counters.resourceGrants[i] ?? 0)
        const burst = Array.from({ length: 90 }, (_, i) => {
          const name = names[i % names.length] as keyof typeof RESOURCES
          return api(`${apis[name].origin}/orders`)
        })
        const results = await statuses(burst)
        expect(results.filter((status) => status !== 200)).toEqual([])
        grantsPerPhase.push(
          indicators.map((i, n) => (provider.counters.resourceGrants[i] ?? 0) - (before[n] ?? 0)),
        )
      }
      expect(grantsPerPhase).toEqual([
        [1, 1, 1],
        [1, 1, 1],
      ])
      expect(engine.stats().grants).toBe(6)
      // known expiry: no request met a 401; unknown: each of the second storm's did, once
      expect(
        names.map((name, n) => apis[name].counters.unauthorized - (unauthorizedBefore[n] ?? 0)),
      ).toEqual(reactive ? [30, 30, 30] : [0, 0, 0])
      expect(engine.stats()).toMatchObject({
        authErrors: reactive ? 90 : 0,
        replays: reactive ? 90 : 0,
      })
      // a reused (spent) refresh token would have revoked the grant at the provider
      expect(provider.counters.grantsRevoked - revokedBefore).toBe(0)
      expect(provider.counters.grantErrors).toEqual(errorsBefore)
      expect(names.map((name) => apis[name].counters.wrongAudience)).toEqual(wrongBefore)
      // the store keeps one refresh token and a token per resource
      const stored = (await engine.getToken()) as TokenSet
      expect(Object.keys(stored.resources ?? {}).sort()).toEqual([...indicators].sort())
    },
  )
})

describe('engine with acquire (client credentials) against oidc-provider', () => {
  it('200 concurrent first requests → one client_credentials grant, every request 200, then one renewal after expiry', async () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    const engine = createEngine({ acquire: clientCredentials(service()) })
    const api = createFetch(engine, { origins: [anyAudience.origin] })
    const before = provider.counters.clientCredentialsGrants
    const first = await statuses(
      Array.from({ length: 200 }, () => api(`${anyAudience.origin}/orders`)),
    )
    expect(first.filter((status) => status !== 200)).toEqual([])
    expect(provider.counters.clientCredentialsGrants - before).toBe(1)
    expect((await engine.getToken())?.refreshToken).toBeUndefined()

    vi.setSystemTime(Date.now() + (TTL + 1) * 1000)
    const renewed = await statuses(
      Array.from({ length: 200 }, () => api(`${anyAudience.origin}/orders`)),
    )
    expect(renewed.filter((status) => status !== 200)).toEqual([])
    expect(provider.counters.clientCredentialsGrants - before).toBe(2)
    expect(engine.stats().grants).toBe(2)
  })
})
