import { describe, expectTypeOf, it } from 'vitest'
import {
  type AuthResponse,
  createEngine,
  createLocalLock,
  createMemoryStore,
  defaultIsAuthError,
  type Engine,
  type EngineEvents,
  type EngineOptions,
  type EngineStats,
  isOAuthError,
  isReauthError,
  isRefreshError,
  isReplayQueueFullError,
  isSessionExpiredError,
  OAuthError,
  parseTokenResponse,
  type ReauthError,
  type ReauthErrorCode,
  type RefreshContext,
  RefreshError,
  type RefreshFunction,
  type RefreshLock,
  type RefreshReason,
  type ReplayQueueFullError,
  type ResourceToken,
  type SessionExpiredError,
  type TokenSet,
  type TokenStore,
} from './index.js'

const refresh: RefreshFunction = async ({ tokens }) => tokens

describe('public types', () => {
  it('createEngine takes EngineOptions with a required refresh and returns an Engine', () => {
    expectTypeOf(createEngine).parameter(0).toEqualTypeOf<EngineOptions>()
    expectTypeOf(createEngine).returns.toEqualTypeOf<Engine>()
    expectTypeOf<EngineOptions['refresh']>().toEqualTypeOf<RefreshFunction | undefined>()
    // refresh (or acquire) is required at run time: a ReauthOptionsError names it
    // @ts-expect-error: refresh must be a function
    createEngine({ refresh: 'nope' })
    // @ts-expect-error: exactOptionalPropertyTypes: no explicit undefined for leeway
    createEngine({ refresh, leeway: undefined })
    createEngine({
      refresh,
      replay: { concurrency: 4, maxQueued: 100 },
      origins: [/x/, 'https://a'],
    })
  })

  it('RefreshFunction gets a RefreshContext and returns a TokenSet promise', () => {
    expectTypeOf<RefreshFunction>().parameter(0).toEqualTypeOf<RefreshContext>()
    expectTypeOf<RefreshFunction>().returns.toEqualTypeOf<Promise<TokenSet>>()
    expectTypeOf<RefreshContext>().toEqualTypeOf<{
      tokens: TokenSet
      signal: AbortSignal
      startedAt: number
      resource?: string | undefined
      dpop?: CryptoKeyPair | undefined
    }>()
  })

  it('TokenSet has the documented fields', () => {
    expectTypeOf<TokenSet>().toEqualTypeOf<{
      accessToken: string
      tokenType: string
      refreshToken?: string
      expiresAt?: number
      issuedAt?: number
      scope?: string
      idToken?: string
      resources?: Record<string, ResourceToken>
      dpopKey?: CryptoKeyPair
    }>()
  })

  it('Engine methods have the documented signatures', () => {
    const engine = createEngine({ refresh })
    expectTypeOf(engine.getToken()).toEqualTypeOf<Promise<TokenSet | undefined>>()
    expectTypeOf(engine.refresh()).toEqualTypeOf<Promise<TokenSet>>()
    expectTypeOf(engine.stats()).toEqualTypeOf<EngineStats>()
    expectTypeOf(engine.clear()).toEqualTypeOf<Promise<void>>()
    expectTypeOf(engine.dispose()).toEqualTypeOf<void>()
    // the adapter steps are not the user's: they live in @reauth/core/adapter
    // @ts-expect-error: no adapter step on the user's engine
    engine.authorize
    // @ts-expect-error: no adapter step on the user's engine
    engine.recover
  })

  it('event listeners get the payload of their event', () => {
    const engine = createEngine({ refresh })
    engine.on('refresh', (payload) => {
      expectTypeOf(payload).toEqualTypeOf<EngineEvents['refresh']>()
      expectTypeOf(payload.reason).toEqualTypeOf<RefreshReason>()
      expectTypeOf(payload.adopted).toBeBoolean()
    })
    engine.on('refreshError', (payload) => {
      expectTypeOf(payload.error).toEqualTypeOf<RefreshError>()
    })
    engine.on('sessionExpired', (payload) => {
      expectTypeOf(payload.error).toEqualTypeOf<SessionExpiredError>()
    })
    expectTypeOf(engine.on('refresh', () => {})).toEqualTypeOf<() => void>()
    // @ts-expect-error: unknown event
    engine.on('nope', () => {})
  })

  it('error guards narrow, and errors carry their fields', () => {
    const value: unknown = undefined
    if (isRefreshError(value)) {
      expectTypeOf(value).toEqualTypeOf<RefreshError>()
      expectTypeOf(value.retryable).toBeBoolean()
      expectTypeOf(value.field).toEqualTypeOf<string | undefined>()
    }
    if (isSessionExpiredError(value)) expectTypeOf(value).toEqualTypeOf<SessionExpiredError>()
    if (isOAuthError(value)) expectTypeOf(value.error).toBeString()
    if (isReplayQueueFullError(value)) expectTypeOf(value).toEqualTypeOf<ReplayQueueFullError>()
    if (isReauthError(value)) expectTypeOf(value.code).toEqualTypeOf<string>()
    expectTypeOf<RefreshError>().toExtend<ReauthError>()
    expectTypeOf<ReauthError>().toExtend<Error>()
    // The core's codes are part of the union (other packages may add theirs).
    expectTypeOf<
      'SESSION_EXPIRED' | 'REFRESH_FAILED' | 'OAUTH_ERROR' | 'INVALID_OPTION' | 'REPLAY_QUEUE_FULL'
    >().toExtend<ReauthErrorCode>()
    expectTypeOf<'NOT_A_CODE'>().not.toExtend<ReauthErrorCode>()
    expectTypeOf(new RefreshError('m', { retryable: true }).code).toEqualTypeOf<'REFRESH_FAILED'>()
    expectTypeOf(new OAuthError({ error: 'invalid_grant' }).status).toEqualTypeOf<
      number | undefined
    >()
  })

  it('helpers have the documented shapes', () => {
    expectTypeOf(createMemoryStore()).toEqualTypeOf<TokenStore>()
    expectTypeOf(createLocalLock()).toEqualTypeOf<RefreshLock>()
    expectTypeOf(parseTokenResponse({}, { sentAt: 0 })).toEqualTypeOf<TokenSet>()
    // @ts-expect-error: sentAt is required
    parseTokenResponse({}, {})
    expectTypeOf(defaultIsAuthError).parameter(0).toEqualTypeOf<AuthResponse>()
    const lock: RefreshLock = createLocalLock()
    expectTypeOf(lock.run('k', async () => 1)).toEqualTypeOf<Promise<number>>()
  })
})
