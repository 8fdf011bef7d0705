import type { TokenSet } from '@reauth/core'
import { HttpResponse, type RequestHandler } from 'msw'
import { describe, expectTypeOf, it } from 'vitest'
import {
  type AuthServer,
  type AuthServerCounters,
  bearerChallenge,
  createAuthServer,
  type ProtectedResolver,
  type ProtectedToken,
  pkceChallenge,
  type TokenHold,
  type TokenOutcome,
} from './index.js'

describe('public types', () => {
  it('createAuthServer returns an AuthServer', () => {
    expectTypeOf(createAuthServer)
      .parameter(0)
      .toEqualTypeOf<import('./index.js').AuthServerOptions | undefined>()
    expectTypeOf(createAuthServer()).toEqualTypeOf<AuthServer>()
    expectTypeOf<AuthServer['handlers']>().toEqualTypeOf<RequestHandler[]>()
    expectTypeOf<AuthServer['signIn']>().returns.toEqualTypeOf<TokenSet>()
    expectTypeOf<AuthServer['hold']>().returns.toEqualTypeOf<TokenHold>()
    expectTypeOf<TokenHold['reached']>().toEqualTypeOf<Promise<void>>()
    expectTypeOf<AuthServer['counters']>().toEqualTypeOf<AuthServerCounters>()
    expectTypeOf<AuthServer['presentedRefreshTokens']>().toEqualTypeOf<readonly string[]>()
  })

  it('protect takes a resolver that sees the token and msw info', () => {
    const resolver: ProtectedResolver = ({ request, params, token }) => {
      expectTypeOf(token).toEqualTypeOf<ProtectedToken>()
      expectTypeOf(request).toExtend<Request>()
      return HttpResponse.json({ url: request.url, id: params.id, family: token.familyId })
    }
    expectTypeOf(createAuthServer().protect('GET', '/x', resolver)).toEqualTypeOf<RequestHandler>()
    // @ts-expect-error HEAD is not a protected method
    createAuthServer().protect('HEAD', '/x')
  })

  it('client credentials, revocation and resources', () => {
    expectTypeOf<AuthServer['revocationEndpoint']>().toEqualTypeOf<string>()
    expectTypeOf<ProtectedToken['audience']>().toEqualTypeOf<string | undefined>()
    expectTypeOf<AuthServerCounters['clientCredentialsGrants']>().toEqualTypeOf<number>()
    expectTypeOf<AuthServerCounters['revocations']>().toEqualTypeOf<number>()
    expectTypeOf<AuthServerCounters['resourceGrants']>().toEqualTypeOf<Record<string, number>>()
    expectTypeOf(createAuthServer().protect)
      .parameter(3)
      .toEqualTypeOf<import('./index.js').ProtectOptions | undefined>()
    createAuthServer().protect('GET', '/x', undefined, { resource: 'https://api.example.test' })
    createAuthServer().signIn({ resources: ['https://api.example.test'] })
  })

  it('outcomes are a closed union', () => {
    expectTypeOf<{ type: 'network-error' }>().toExtend<TokenOutcome>()
    expectTypeOf<{ type: 'status'; status: 503; retryAfter: 2 }>().toExtend<TokenOutcome>()
    expectTypeOf<{ type: 'teapot' }>().not.toExtend<TokenOutcome>()
    // @ts-expect-error a status outcome needs its status
    createAuthServer().enqueue({ type: 'status' })
  })

  it('DPoP options, counters and nonce rotation', () => {
    createAuthServer({ dpop: true })
    createAuthServer({ dpop: { requireNonce: true, required: true, iatWindow: 30 } })
    // @ts-expect-error an unknown DPoP option
    createAuthServer({ dpop: { nonce: true } })
    expectTypeOf<AuthServerCounters['dpop']>().toEqualTypeOf<import('./index.js').DpopCounters>()
    expectTypeOf<AuthServer['rotateDpopNonce']>().returns.toEqualTypeOf<string>()
    expectTypeOf<ProtectedToken['jkt']>().toEqualTypeOf<string | undefined>()
  })

  it('helpers', () => {
    expectTypeOf(bearerChallenge).returns.toEqualTypeOf<string>()
    expectTypeOf(pkceChallenge).returns.toEqualTypeOf<Promise<string>>()
  })
})
