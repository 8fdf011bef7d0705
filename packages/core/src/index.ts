export type { Challenge } from './auth-error.js'
export { defaultIsAuthError, parseChallenges } from './auth-error.js'
export type { DpopKeyPairJwk, DpopProofOptions, GenerateDpopKeyPairOptions } from './dpop.js'
export {
  createDpopProof,
  dpopThumbprint,
  exportDpopKeyPair,
  generateDpopKeyPair,
  importDpopKeyPair,
} from './dpop.js'
export type {
  Engine,
  EngineEvents,
  EngineOptions,
  EngineStats,
  RefreshReason,
} from './engine.js'
export { createEngine } from './engine.js'
export type {
  OAuthErrorFields,
  ReauthErrorCode,
  ReauthErrorOptions,
  RefreshErrorFields,
  RefreshErrorOptions,
  RefreshFailureFields,
} from './errors.js'
export {
  isOAuthError,
  isReauthError,
  isReauthOptionsError,
  isRefreshError,
  isReplayQueueFullError,
  isSessionExpiredError,
  OAuthError,
  ReauthError,
  ReauthOptionsError,
  RefreshError,
  ReplayQueueFullError,
  SessionExpiredError,
} from './errors.js'
export { createLocalLock } from './local-lock.js'
export { createMemoryStore } from './memory-store.js'
export type { ReplayQueueLike, ReplayQueueOptions } from './replay-queue.js'
export type { ParseTokenResponseOptions } from './token-set.js'
export { isSessionEnd, parseTokenResponse, storedSessionProblem } from './token-set.js'
export type {
  AcquireContext,
  AcquireFunction,
  AuthResponse,
  IsAuthError,
  Logger,
  MaybePromise,
  OriginPolicy,
  RefreshContext,
  RefreshFunction,
  RefreshLock,
  ResourceToken,
  RevokeContext,
  RevokeFunction,
  SessionEnd,
  StoredSession,
  TokenSet,
  TokenStore,
} from './types.js'
