export type { Challenge } from './auth-error.js'
export { bearerError, defaultIsAuthError, parseChallenges } from './auth-error.js'
export type { DeadlineSignal } from './deadline.js'
export { deadlineSignal } from './deadline.js'
export type {
  AuthorizeTarget,
  Engine,
  EngineEvents,
  EngineOptions,
  EngineRequest,
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
  errorForRequest,
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
  unreplayableBody,
} from './errors.js'
export {
  classifyRefreshFailure,
  MAX_RETRY_AFTER_MS,
  parseRetryAfter,
  TERMINAL_OAUTH_ERRORS,
} from './failure.js'
export { createLocalLock } from './local-lock.js'
export { createLogger, describeUrl } from './logger.js'
export { createMemoryStore } from './memory-store.js'
export type { OriginMatcher } from './origins.js'
export { adapterOrigins, createOriginMatcher } from './origins.js'
export type { ReplayQueueOptions } from './replay-queue.js'
export { ReplayQueue } from './replay-queue.js'
export type { ParseTokenResponseOptions } from './token-set.js'
export {
  authorizationHeader,
  isSessionEnd,
  parseTokenResponse,
  storedSessionProblem,
  tokenSetProblem,
} from './token-set.js'
export type {
  AuthResponse,
  IsAuthError,
  Logger,
  MaybePromise,
  OriginPolicy,
  RefreshContext,
  RefreshFunction,
  RefreshLock,
  SessionEnd,
  StoredSession,
  TokenSet,
  TokenStore,
  AcquireContext,
  AcquireFunction,
  RevokeContext,
  RevokeFunction,
} from './types.js'
export { baseOrigin, pageOrigin, requestBase, resolveRequestUrl } from './url.js'
