import type { AcquireFunction, RefreshFunction, RevokeFunction, TokenSet } from '@reauth/core'
import { expectTypeOf, test } from 'vitest'
import {
  beginSignIn,
  type ClientCredentialsOptions,
  clientCredentials,
  completeSignIn,
  createRefreshGrant,
  type DiscoveryError,
  discover,
  isDiscoveryError,
  isRevocationError,
  isSignInError,
  type RevocationError,
  type RevokeTokensOptions,
  revokeTokens,
  type SignInCallback,
  type SignInError,
  type SignInOptions,
  type SignInRequest,
} from './index.js'

test('createRefreshGrant returns the engine’s refresh function', () => {
  expectTypeOf(createRefreshGrant).returns.toEqualTypeOf<RefreshFunction>()
  expectTypeOf(createRefreshGrant).toBeCallableWith({
    issuer: 'https://auth.example.test',
    clientId: 'app',
    clientSecret: 's',
    clientAuth: 'client_secret_basic',
    encodeBasicCredentials: false,
    allowInsecureRequests: true,
  })
  // @ts-expect-error clientAuth is one of three methods
  createRefreshGrant({ issuer: 'https://a.test', clientId: 'app', clientAuth: 'private_key_jwt' })
})

test('sign-in options, request and callback', () => {
  expectTypeOf(beginSignIn).returns.toEqualTypeOf<Promise<SignInRequest>>()
  expectTypeOf(completeSignIn).returns.toEqualTypeOf<Promise<TokenSet>>()
  expectTypeOf<SignInOptions['offlineAccess']>().toEqualTypeOf<boolean | 'auto' | undefined>()
  expectTypeOf<SignInOptions['prompt']>().toEqualTypeOf<string | false | undefined>()
  expectTypeOf<SignInCallback['state']>().toEqualTypeOf<string>()
  expectTypeOf<SignInCallback['codeVerifier']>().toEqualTypeOf<string>()
  expectTypeOf<SignInRequest['nonce']>().toEqualTypeOf<string | undefined>()
  expectTypeOf<SignInOptions['dpop']>().toEqualTypeOf<CryptoKeyPair | undefined>()
  expectTypeOf<SignInOptions['dpopJkt']>().toEqualTypeOf<string | undefined>()
})

test('discovery and the error guards', () => {
  expectTypeOf(discover).toBeCallableWith('https://auth.example.test', {
    allowInsecureRequests: true,
  })
  expectTypeOf(isDiscoveryError).guards.toEqualTypeOf<DiscoveryError>()
  expectTypeOf(isSignInError).guards.toEqualTypeOf<SignInError>()
  expectTypeOf<DiscoveryError['retryable']>().toEqualTypeOf<boolean>()
  expectTypeOf<SignInError['error']>().toEqualTypeOf<string | undefined>()
})

test('clientCredentials is an acquire function, revokeTokens a revoke function', () => {
  expectTypeOf(clientCredentials).returns.toEqualTypeOf<AcquireFunction>()
  expectTypeOf(clientCredentials).toBeCallableWith(
    { issuer: 'https://auth.example.test', clientId: 'svc', clientSecret: 's' },
    { scope: 'read', resource: 'https://api.example.test' },
  )
  expectTypeOf<ClientCredentialsOptions['resource']>().toEqualTypeOf<
    string | string[] | undefined
  >()
  expectTypeOf(revokeTokens).returns.toEqualTypeOf<RevokeFunction>()
  expectTypeOf<RevokeTokensOptions['accessToken']>().toEqualTypeOf<boolean | undefined>()
  expectTypeOf(isRevocationError).guards.toEqualTypeOf<RevocationError>()
  expectTypeOf<RevocationError['retryable']>().toEqualTypeOf<boolean>()
  expectTypeOf<RevocationError['tokenTypeHint']>().toEqualTypeOf<
    'refresh_token' | 'access_token' | undefined
  >()
})
