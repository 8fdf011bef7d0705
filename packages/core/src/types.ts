/**
 * A set of OAuth 2.0 tokens as the engine keeps them.
 *
 * `expiresAt` and `issuedAt` are absolute times in milliseconds since the epoch, taken
 * from the local clock when the token request was **sent** (never later), so a slow
 * response can only make the engine refresh early, never late.
 *
 * @example
 * const tokens: TokenSet = {
 *   accessToken: 'eyJ…',
 *   tokenType: 'Bearer',
 *   refreshToken: 'r1',
 *   expiresAt: Date.now() + 3600_000,
 * }
 */
export interface TokenSet {
  /** The access token sent in `Authorization`. */
  accessToken: string
  /** The token type: `Bearer`, or `DPoP` (with {@link TokenSet.dpopKey}); any case. */
  tokenType: string
  /** The refresh token; a refresh that returns none keeps the old one (RFC 6749 §6). */
  refreshToken?: string
  /** When the access token expires, in ms since the epoch. */
  expiresAt?: number
  /** When the token request was sent, in ms since the epoch; bounds the leeway to half the lifetime. */
  issuedAt?: number
  /** The granted scope, space separated. */
  scope?: string
  /** The OpenID Connect ID token, when the server returned one. */
  idToken?: string
  /**
   * Access tokens per RFC 8707 resource indicator, when the engine has `resources`: all got
   * with the one `refreshToken` of this set.
   */
  resources?: Record<string, ResourceToken>
  /**
   * The DPoP key pair (RFC 9449) the tokens are bound to: required for `tokenType: 'DPoP'`.
   * It lives and dies with the tokens (a sign-out or a session end discards it).
   */
  dpopKey?: CryptoKeyPair
}

/** An access token for one resource (RFC 8707), kept in {@link TokenSet.resources}. */
export type ResourceToken = Pick<
  TokenSet,
  'accessToken' | 'tokenType' | 'expiresAt' | 'issuedAt' | 'scope'
>

/**
 * What a store holds after a terminal refresh failure (`invalid_grant`, …): no tokens, and the
 * fact that the session ended, so every engine on a shared store fails fast with
 * `SessionExpiredError` and fires `sessionExpired` once — not only the one whose grant failed.
 * Written with `set`; `setTokens` replaces it, `clear` (sign-out) removes it. Carries no token.
 *
 * @example
 * const value = await store.get()
 * if (isSessionEnd(value)) console.log(value.ended.error) // 'invalid_grant'
 */
export interface SessionEnd {
  ended: {
    /** The RFC 6749 §5.2 code that ended the session, e.g. `invalid_grant`. */
    error?: string | undefined
    /** The server's `error_description`, if any. */
    errorDescription?: string | undefined
    /** The HTTP status of the token response. */
    status?: number | undefined
    /** When the session ended (ms since the epoch); tells one end from the next. */
    at: number
  }
}

/** What a {@link TokenStore} holds: a token set, or the end of the session. */
export type StoredSession = TokenSet | SessionEnd

/** A value or a promise of it: stores and locks may be sync or async. */
export type MaybePromise<T> = T | Promise<T>

/**
 * Where the engine keeps its token set. The engine keeps no second copy: every decision
 * reads the store, so a store shared with other tabs or processes is always the truth.
 * A store keeps whatever the engine `set`s — a {@link TokenSet}, or after a terminal failure a
 * {@link SessionEnd} — and gives it back from `get` (JSON round trips are fine).
 *
 * @example
 * const store: TokenStore = {
 *   get: () => JSON.parse(sessionStorage.getItem('tokens') ?? 'null') ?? undefined,
 *   set: (tokens) => sessionStorage.setItem('tokens', JSON.stringify(tokens)),
 *   clear: () => sessionStorage.removeItem('tokens'),
 * }
 */
export interface TokenStore {
  /** The current set (or session end), or `undefined` (or `null`) when signed out. */
  get(): MaybePromise<StoredSession | undefined | null>
  /** Replace the value. The engine writes here before it releases any waiter. */
  set(value: StoredSession): MaybePromise<void>
  /** Remove the value (sign-out). */
  clear(): MaybePromise<void>
  /**
   * Optional: call `listener` when the set changed elsewhere (another engine, tab or
   * process), so waiters adopt it at once. Returns an unsubscribe function.
   */
  subscribe?(listener: (value: StoredSession | undefined) => void): () => void
}

/**
 * Mutual exclusion around a refresh. The default is in-process; `@reauth/redis` and
 * `@reauth/browser` provide locks across processes and tabs. Inside the lock the engine
 * re-reads the store and skips the grant when another holder already refreshed.
 *
 * @example
 * const lock: RefreshLock = { run: (_key, fn) => navigator.locks.request('reauth', fn) }
 */
export interface RefreshLock {
  /** Run `fn` while holding the lock named `key`, and settle with its outcome. */
  run<T>(key: string, fn: () => Promise<T>): Promise<T>
}

/** What the engine gives the `refresh` function. */
export interface RefreshContext {
  /** The token set being refreshed (read from the store inside the lock). */
  tokens: TokenSet
  /**
   * Aborted when `refreshTimeout` elapses; pass it to your HTTP call. A request carrying this
   * signal through a reauth adapter is sent untouched, so a refresh function may use the very
   * client it keeps authorised without waiting on itself. Honour it: after a timeout the lock
   * is released, and a grant that goes on regardless may rotate the refresh token behind the
   * engine's back.
   */
  signal: AbortSignal
  /** The local clock (ms) when the engine started this grant; use it for `expires_in`. */
  startedAt: number
  /**
   * The RFC 8707 resource indicator this grant is for, when the engine keeps per-resource
   * tokens (`resources`); send it as the `resource` parameter. `undefined` otherwise.
   */
  resource?: string | undefined
  /**
   * The engine's DPoP key pair (RFC 9449) when DPoP is on: sign a proof for the token request
   * with it. `undefined` for Bearer.
   */
  dpop?: CryptoKeyPair | undefined
}

/**
 * What the engine gives the `acquire` function: a grant that needs no refresh token, such as
 * client credentials. Called on first use, and whenever the token must be renewed.
 */
export interface AcquireContext {
  /** Aborted when `refreshTimeout` elapses; pass it to your HTTP call. */
  signal: AbortSignal
  /** The local clock (ms) when the engine started this grant; use it for `expires_in`. */
  startedAt: number
  /** The RFC 8707 resource indicator this grant is for, when the engine keeps per-resource tokens. */
  resource?: string | undefined
  /** The engine's DPoP key pair when DPoP is on. */
  dpop?: CryptoKeyPair | undefined
}

/** Obtain tokens without a refresh token (client credentials); see `@reauth/oauth`. */
export type AcquireFunction = (context: AcquireContext) => Promise<TokenSet>

/** What the engine gives the `revoke` function at sign-out. */
export interface RevokeContext {
  /** The token set being signed out (already cleared from the store). */
  tokens: TokenSet
  /** Aborted when `refreshTimeout` elapses. */
  signal: AbortSignal
}

/**
 * Revoke tokens at the server (RFC 7009) when the user signs out; see `@reauth/oauth`.
 * A failure never stops the local sign-out: it is logged and reported.
 */
export type RevokeFunction = (context: RevokeContext) => Promise<void>

/**
 * Exchange the current tokens for new ones. Throw an {@link OAuthError}-like error
 * (any error with a string `error` property, such as oauth4webapi's `ResponseBodyError`)
 * to report an RFC 6749 §5.2 error; the engine decides terminal versus transient.
 */
export type RefreshFunction = (context: RefreshContext) => Promise<TokenSet>

/** The parts of a response the engine looks at. */
export interface AuthResponse {
  status: number
  headers: { get(name: string): string | null | undefined }
}

/** Decides whether a response is an authentication failure that a refresh may fix. */
export type IsAuthError = (response: AuthResponse) => boolean

/** Origins allowed to receive the token: exact origins (`https://api.example.com`), RegExps tested against the origin, or a predicate on the URL. */
export type OriginPolicy = ReadonlyArray<string | RegExp> | ((url: URL) => boolean)

/** Log sink. Lines never contain token values. `console` fits. */
export interface Logger {
  debug?(message: string, meta?: Record<string, unknown>): void
  info?(message: string, meta?: Record<string, unknown>): void
  warn?(message: string, meta?: Record<string, unknown>): void
  error?(message: string, meta?: Record<string, unknown>): void
}
