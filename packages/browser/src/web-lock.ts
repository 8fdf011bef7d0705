import { createLocalLock, type Logger, ReauthOptionsError, type RefreshLock } from '@reauth/core'
import { createLogger } from '@reauth/core/adapter'
import { TabSyncError } from './errors.js'

/**
 * The part of the Web Locks API ({@link https://w3c.github.io/web-locks/ | LockManager})
 * that {@link createWebLock} uses: `navigator.locks` fits.
 */
export interface LockManagerLike {
  request<T>(
    name: string,
    options: { mode?: 'exclusive' | 'shared'; signal?: AbortSignal },
    callback: (lock: unknown) => Promise<T>,
  ): Promise<T>
  /** A snapshot of the held locks (used to learn of newer token sets, see `store`). */
  query?(): Promise<{ held?: ReadonlyArray<{ name?: string | undefined }> | undefined }>
}

/** A store that can catch up with changes other tabs made: {@link createBroadcastStore}, {@link createStorageStore}. */
export interface CatchUp {
  /** Resolve once the store holds the newest set any tab published (bounded; rejects when it cannot). */
  catchUp(): Promise<void>
}

/** Options of {@link createWebLock}. */
export interface WebLockOptions {
  /**
   * Prefix of the Web Lock's name (`<prefix>:<lockKey>`). Apps on one origin that must not
   * share a refresh use different prefixes. Default `'reauth'`.
   */
  prefix?: string
  /**
   * Give up waiting for the lock after this many ms: the engine then reports a retryable
   * `RefreshError` and the next request tries again. Bounds the wait on a tab that hangs while
   * holding the lock. Default 30 000.
   */
  acquireTimeout?: number
  /** The lock manager. Default `navigator.locks`, where the browser has it. */
  locks?: LockManagerLike
  /**
   * The engine's store, when it is shared across tabs ({@link createBroadcastStore},
   * {@link createStorageStore}): once the lock is granted, the store first catches up with
   * the newest set another tab stored, so the engine's re-read finds it even when its message
   * is still on the way. Pass it: without it a tab may spend a refresh token that the previous
   * holder already rotated.
   */
  store?: CatchUp
  /** Where to say, once, that Web Locks are missing and the lock is per tab only. */
  logger?: Logger
}

/** A {@link RefreshLock} that spans the tabs of one origin (or only this tab, see `crossTab`). */
export interface WebLock extends RefreshLock {
  /** `true` when the Web Locks API is in use; `false` after the fallback to in-tab single flight. */
  readonly crossTab: boolean
}

/** `navigator.locks`, where the browser has it. */
export function defaultLocks(): LockManagerLike | undefined {
  const locks = (globalThis as { navigator?: { locks?: unknown } }).navigator?.locks
  if (typeof locks !== 'object' || locks === null) return undefined
  return typeof (locks as LockManagerLike).request === 'function'
    ? (locks as LockManagerLike)
    : undefined
}

/**
 * A refresh lock shared by every tab (and worker) of the origin, on the Web Locks API
 * (`navigator.locks.request`). One tab at a time runs the grant; the others wait, then the
 * engine's re-read inside the lock finds the tokens the holder stored and adopts them without
 * a grant. The browser releases the lock when its holder's page closes or crashes, so another
 * tab takes over. Give the engines a store shared across tabs too
 * ({@link createBroadcastStore} or a localStorage {@link createStorageStore}).
 *
 * Where the API is missing (old browsers, pages not served over https or from localhost),
 * it falls back to single flight inside this tab and says so once through `logger.warn`.
 *
 * @example
 * import { createEngine } from '@reauth/core'
 * import { createBroadcastStore, createWebLock } from '@reauth/browser'
 *
 * const store = createBroadcastStore()
 * const engine = createEngine({
 *   refresh,
 *   store,
 *   lock: createWebLock({ store, logger: console }),
 * })
 */
export function createWebLock(options: WebLockOptions = {}): WebLock {
  if (typeof options !== 'object' || options === null) {
    throw new ReauthOptionsError('createWebLock() options must be an object')
  }
  const { prefix = 'reauth', acquireTimeout = 30_000, logger } = options
  const log = createLogger(logger)
  if (typeof prefix !== 'string' || prefix === '') {
    throw new ReauthOptionsError('"prefix" must be a non-empty string')
  }
  if (
    typeof acquireTimeout !== 'number' ||
    !(acquireTimeout > 0) ||
    acquireTimeout > 2_147_483_647
  ) {
    throw new ReauthOptionsError('"acquireTimeout" must be a number of ms > 0 and ≤ 2147483647')
  }
  if (options.locks !== undefined && typeof options.locks?.request !== 'function') {
    throw new ReauthOptionsError('"locks" must be a LockManager (navigator.locks)')
  }
  if (options.store !== undefined && typeof options.store?.catchUp !== 'function') {
    throw new ReauthOptionsError(
      '"store" must be a store from createBroadcastStore() or createStorageStore()',
    )
  }
  const { store } = options
  const locks = options.locks ?? defaultLocks()
  if (!locks) {
    log.warn(
      'The Web Locks API is not available: the refresh is single-flight within this tab only, and other tabs may refresh too',
    )
    const local = createLocalLock()
    return { crossTab: false, run: (key, fn) => local.run(`${prefix}:${key}`, fn) }
  }
  return {
    crossTab: true,
    async run(key, fn) {
      const controller = new AbortController()
      // Only the wait is bounded: once granted, the engine's refreshTimeout bounds the grant.
      let granted = false
      const timer = setTimeout(() => {
        if (!granted)
          controller.abort(
            new TabSyncError('LOCK_TIMEOUT', `Waited ${acquireTimeout} ms for the Web Lock`),
          )
      }, acquireTimeout)
      try {
        return await locks.request(
          `${prefix}:${key}`,
          { mode: 'exclusive', signal: controller.signal },
          async () => {
            granted = true
            clearTimeout(timer)
            await store?.catchUp()
            return fn()
          },
        )
      } finally {
        clearTimeout(timer)
      }
    },
  }
}
