import type { RefreshFunction, TokenSet } from '@reauth/core'
import { expectTypeOf, test } from 'vitest'
import {
  beginSignIn,
  completeSignIn,
  createRefreshGrant,
  type DiscoveryError,
  discover,
  isDiscoveryError,
  isSignInError,
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
