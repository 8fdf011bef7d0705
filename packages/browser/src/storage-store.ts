import { type Logger, ReauthOptionsError, type StoredSession, type TokenStore } from '@reauth/core'
import { createLogger } from '@reauth/core/adapter'
import { createCatchUp } from './catch-up.js'
import {
  createStampMarks,
  NONE,
  nextStamp,
  randomId,
  readStamp,
  type Stamp,
  stampLimit,
} from './stamp.js'
import { toStoredSession } from './token-json.js'
import { type CatchUp, defaultLocks, type LockManagerLike } from './web-lock.js'

/** Options of {@link createStorageStore}. */
export interface StorageStoreOptions {
  /** The key the token set is kept under, as JSON. Default `'reauth.tokens'`. */
  key?: string
  /**
   * Where `storage` events arrive (another tab wrote `localStorage`). Default `window`
   * (`globalThis`) when it has `addEventListener`.
   */
  events?: Pick<EventTarget, 'addEventListener' | 'removeEventListener'>
  /** The lock manager that carries the marks {@link CatchUp} reads. Default `navigator.locks`. */
  locks?: LockManagerLike
  /** How long `catchUp` waits for another tab's newer write to show. Default 2 000 ms. */
  catchUpTimeout?: number
  /** Where to say that a stored value was not a valid token set (the value is never logged). */
  logger?: Logger
}

/** A {@link TokenStore} on a Web Storage area: a token set, or the end of the session. */
export interface StorageStore extends TokenStore, CatchUp {
  /** The set, the end of the session, or `undefined` (signed out). */
  get(): StoredSession | undefined
  /** Called on every change: this store's own writes and, for localStorage, other tabs' writes. */
  subscribe(listener: (value: StoredSession | undefined) => void): () => void
  /** Stop listening to `storage` events and drop this tab's mark. */
  close(): void
}

/**
 * What is stored: the set (or the end of the session) and the stamp of the write (a bare
 * token set is read too). A stamp more than the skew ahead of the present reads as none: it
 * would make every tab's catch-up wait for a write that never comes.
 */
function parse(text: string | null): { tokens: StoredSession | undefined; stamp: Stamp } | null {
  if (text === null) return { tokens: undefined, stamp: NONE }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return null
  }
  if (typeof value !== 'object' || value === null) return null
  const { tokens, stamp } = value as { tokens?: unknown; stamp?: unknown }
  const withStamp = toStoredSession(tokens)
  if (withStamp) return { tokens: withStamp, stamp: readStamp(stamp, stampLimit()) ?? NONE }
  const bare = toStoredSession(value)
  return bare ? { tokens: bare, stamp: NONE } : null
}

/**
 * A token store on `localStorage` or `sessionStorage`, as JSON under one key.
 *
 * - `localStorage` is shared by every tab of the origin and survives closing the browser; a
 *   write in one tab reaches the others' engines through the `storage` event, so their waiters
 *   adopt the new set at once. Any script on the page (an XSS, a compromised dependency) can
 *   read it. Pass the store to {@link createWebLock} too (`createWebLock({ store })`).
 * - `sessionStorage` is per tab: it survives a reload of that tab and nothing else, so tabs do
 *   not share tokens through it. To share across tabs while keeping a per-tab copy, use
 *   {@link createBroadcastStore} with `persist: sessionStorage`.
 *
 * A stored value that is not a valid token set reads as "no tokens" and is logged (never its
 * content). A failing storage (quota, blocked) fails the refresh with a retryable error. After
 * a terminal refresh failure the store holds the end of the session (no tokens), so every
 * tab's engine on `localStorage` fails fast and fires `sessionExpired` once.
 *
 * @example
 * import { createEngine } from '@reauth/core'
 * import { createStorageStore, createWebLock } from '@reauth/browser'
 *
 * const store = createStorageStore(localStorage)
 * const engine = createEngine({ refresh, store, lock: createWebLock({ store }) })
 */
export function createStorageStore(
  storage: Storage,
  options: StorageStoreOptions = {},
): StorageStore {
  if (
    typeof storage !== 'object' ||
    storage === null ||
    typeof storage.getItem !== 'function' ||
    typeof storage.setItem !== 'function' ||
    typeof storage.removeItem !== 'function'
  ) {
    throw new ReauthOptionsError('"storage" must be a Storage (localStorage or sessionStorage)')
  }
  if (typeof options !== 'object' || options === null) {
    throw new ReauthOptionsError('createStorageStore() options must be an object')
  }
  const { key = 'reauth.tokens', logger, catchUpTimeout = 2_000 } = options
  const log = createLogger(logger)
  if (typeof key !== 'string' || key === '') {
    throw new ReauthOptionsError('"key" must be a non-empty string')
  }
  if (typeof catchUpTimeout !== 'number' || !(catchUpTimeout > 0)) {
    throw new ReauthOptionsError('"catchUpTimeout" must be a number of ms > 0')
  }
  const events = options.events ?? defaultEvents()
  if (events !== undefined && typeof events?.addEventListener !== 'function') {
    throw new ReauthOptionsError('"events" must be an EventTarget (window)')
  }
  if (options.locks !== undefined && typeof options.locks?.request !== 'function') {
    throw new ReauthOptionsError('"locks" must be a LockManager (navigator.locks)')
  }
  const locks = options.locks ?? defaultLocks()
  const marks = locks && createStampMarks(locks, `reauth-storage:${key}`)
  const id = randomId()
  const listeners = new Set<(value: StoredSession | undefined) => void>()
  let reported: string | null = null

  function read(text: string | null): { tokens: StoredSession | undefined; stamp: Stamp } {
    const stored = parse(text)
    if (stored) return stored
    if (reported !== text) {
      reported = text
      log.warn(`Ignored an invalid token set in storage under "${key}"`)
    }
    return { tokens: undefined, stamp: NONE }
  }

  const current = () => read(storage.getItem(key))
  // Nothing stored: there is no refresh token this tab could spend stale, so nothing to wait for.
  const caughtUp: Stamp = { time: Number.POSITIVE_INFINITY, writer: '' }
  const catchUp = createCatchUp(
    marks,
    () => (storage.getItem(key) === null ? caughtUp : current().stamp),
    catchUpTimeout,
  )

  function notify(tokens: StoredSession | undefined): void {
    catchUp.changed()
    for (const listener of listeners) {
      try {
        listener(tokens)
      } catch {
        log.error('A token store listener threw')
      }
    }
  }

  const onStorage = (event: Event) => {
    const { key: changed, storageArea, newValue } = event as StorageEvent
    if (storageArea !== storage || (changed !== key && changed !== null)) return
    const { tokens, stamp } = changed === null ? read(null) : read(newValue)
    notify(tokens)
    void marks?.publish(stamp)
  }
  events?.addEventListener('storage', onStorage)

  function write(tokens: StoredSession | undefined): Promise<void> {
    const stamp = nextStamp(current().stamp, id)
    if (tokens) storage.setItem(key, JSON.stringify({ tokens, stamp }))
    else storage.removeItem(key)
    notify(tokens)
    return marks?.publish(stamp) ?? Promise.resolve()
  }

  return {
    get: () => current().tokens,
    set(value) {
      const copy = toStoredSession(value)
      if (!copy) throw new ReauthOptionsError('The token set to store is invalid')
      return write(copy)
    },
    clear: () => write(undefined),
    subscribe(listener) {
      listeners.add(listener)
      return () => {
        listeners.delete(listener)
      }
    },
    catchUp: () => catchUp.catchUp(),
    close() {
      listeners.clear()
      events?.removeEventListener('storage', onStorage)
      marks?.close()
    },
  }
}

function defaultEvents(): StorageStoreOptions['events'] {
  const target = globalThis as Partial<EventTarget>
  return typeof target.addEventListener === 'function' &&
    typeof target.removeEventListener === 'function'
    ? (target as EventTarget)
    : undefined
}
