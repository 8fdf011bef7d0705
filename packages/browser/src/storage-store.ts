import {
  isSessionEnd,
  type Logger,
  ReauthOptionsError,
  type StoredSession,
  type TokenStore,
} from '@reauth/core'
import { createLogger } from '@reauth/core/adapter'
import { createCatchUp } from './catch-up.js'
import { createDpopKeys, defaultIndexedDb, type IndexedDbLike } from './idb-keys.js'
import {
  createStampMarks,
  NONE,
  nextStamp,
  randomId,
  readStamp,
  type Stamp,
  stampLimit,
} from './stamp.js'
import { fromWire, toOwnSession, toWire } from './token-json.js'
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
  /**
   * Where the DPoP key pair of a set is kept (database `reauth`, object store `dpop-keys`).
   * Default `globalThis.indexedDB`; without one, key pairs stay in this context's memory.
   */
  indexedDB?: IndexedDbLike
}

/** A {@link TokenStore} on a Web Storage area: a token set, or the end of the session. */
export interface StorageStore extends TokenStore, CatchUp {
  /**
   * The set, the end of the session, or `undefined` (signed out). A Promise only when the set
   * is DPoP-bound and its key pair must first be read from IndexedDB (after a reload, or a set
   * another tab wrote); at once otherwise.
   */
  get(): StoredSession | undefined | Promise<StoredSession | undefined>
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
interface Parsed {
  tokens: StoredSession | undefined
  stamp: Stamp
  /** The thumbprint of the set's DPoP key pair, kept in IndexedDB. */
  jkt?: string | undefined
}

function parse(text: string | null): Parsed | null {
  if (text === null) return { tokens: undefined, stamp: NONE }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return null
  }
  if (typeof value !== 'object' || value === null) return null
  const { tokens, stamp } = value as { tokens?: unknown; stamp?: unknown }
  const withStamp = fromWire(tokens)
  if (withStamp) {
    return { ...withStamp, stamp: readStamp(stamp, stampLimit()) ?? NONE }
  }
  const bare = fromWire(value)
  return bare ? { ...bare, stamp: NONE } : null
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

  const keys = createDpopKeys(`storage:${key}`, options.indexedDB ?? defaultIndexedDb(), log)

  function read(text: string | null): Parsed {
    const stored = parse(text)
    if (stored) return stored
    if (reported !== text) {
      reported = text
      log.warn(`Ignored an invalid token set in storage under "${key}"`)
    }
    return { tokens: undefined, stamp: NONE }
  }

  const current = () => read(storage.getItem(key))
  /** The thumbprint of the key pair of the last value this context wrote or saw. */
  let known: string | undefined = current().jkt

  // Nothing stored: there is no refresh token this tab could spend stale, so nothing to wait for.
  const caughtUp: Stamp = { time: Number.POSITIVE_INFINITY, writer: '' }
  const catchUp = createCatchUp(
    marks,
    () => (storage.getItem(key) === null ? caughtUp : current().stamp),
    catchUpTimeout,
  )

  /**
   * The stored value with its DPoP key pair attached: at once when this context holds the
   * pair, else a Promise that reads it from IndexedDB. A DPoP set whose pair is gone (deleted
   * by a sign-out in another tab that raced this read, or a broken write) reads as no tokens.
   */
  function withKey(
    parsed: Parsed,
    text: string | null,
  ): StoredSession | undefined | Promise<StoredSession | undefined> {
    const { tokens, jkt } = parsed
    if (!tokens || isSessionEnd(tokens) || jkt === undefined) return tokens
    const pair = keys.cached(jkt)
    if (pair) return { ...tokens, dpopKey: pair }
    return keys.load(jkt).then((loaded) => {
      if (loaded) return { ...tokens, dpopKey: loaded }
      const now = storage.getItem(key)
      // Another tab wrote meanwhile (its key is stored before its set): read again.
      if (now !== text) return withKey(read(now), now)
      log.warn(`The DPoP key pair of the token set under "${key}" is missing: read as no tokens`)
      return undefined
    })
  }

  function get(): StoredSession | undefined | Promise<StoredSession | undefined> {
    const text = storage.getItem(key)
    return withKey(read(text), text)
  }

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
    const text = changed === null ? null : newValue
    const parsed = read(text)
    const previous = known
    known = parsed.jkt
    // Another tab replaced or deleted the set: its old pair is not this one's any more.
    if (previous !== undefined && previous !== known) keys.forget(previous)
    const value = withKey(parsed, text)
    if (!(value instanceof Promise)) {
      notify(value)
      void marks?.publish(parsed.stamp)
      return
    }
    value.then(
      (tokens) => {
        // Notified only if still the newest value: a later event notifies its own.
        if (storage.getItem(key) !== text) return
        notify(tokens)
        void marks?.publish(parsed.stamp)
      },
      () => log.warn(`Could not read the DPoP key pair of the token set under "${key}"`),
    )
  }
  events?.addEventListener('storage', onStorage)

  function write(tokens: StoredSession | undefined, jkt?: string): Promise<void> {
    const before = current()
    const stamp = nextStamp(before.stamp, id)
    if (tokens) storage.setItem(key, JSON.stringify({ tokens: toWire(tokens, jkt), stamp }))
    else storage.removeItem(key)
    known = jkt
    notify(tokens)
    const published = marks?.publish(stamp) ?? Promise.resolve()
    // The key lives as long as its tokens: a sign-out, a session end or a new key drops it.
    const old = before.jkt
    if (old === undefined || old === jkt) return published
    return Promise.all([published, keys.remove(old)]).then(() => undefined)
  }

  return {
    get,
    set(value) {
      const copy = toOwnSession(value)
      if (!copy) throw new ReauthOptionsError('The token set to store is invalid')
      if (isSessionEnd(copy) || copy.dpopKey === undefined) return write(copy)
      // The pair is in IndexedDB before the set that names it is in storage.
      return keys.put(copy.dpopKey).then((jkt) => write(copy, jkt))
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
