import {
  isSessionEnd,
  type Logger,
  ReauthOptionsError,
  type StoredSession,
  type TokenSet,
  type TokenStore,
} from '@reauth/core'
import { createLogger } from '@reauth/core/adapter'
import { createCatchUp } from './catch-up.js'
import { createDpopKeys, defaultIndexedDb, type IndexedDbLike } from './idb-keys.js'
import {
  createStampMarks,
  NONE,
  newer,
  nextStamp,
  randomId,
  readStamp,
  type Stamp,
  stampLimit,
} from './stamp.js'
import { fromWire, toOwnSession, toTokenSet, toWire } from './token-json.js'
import { type CatchUp, defaultLocks, type LockManagerLike } from './web-lock.js'

/** Options of {@link createBroadcastStore}. */
export interface BroadcastStoreOptions {
  /** The BroadcastChannel's name: stores with the same name (same origin) share their tokens. Default `'reauth'`. */
  channel?: string
  /** The tokens to start with (e.g. right after sign-in in this tab); they are shared at once. */
  initial?: TokenSet
  /**
   * Also keep this tab's copy in a `Storage` (typically `sessionStorage`), so a reload of the
   * tab keeps the session without asking the others. Costs what storage costs: any script on
   * the page can read it. Default: memory only.
   */
  persist?: Storage
  /** The key in `persist`. Default `'reauth.tokens'`. */
  key?: string
  /** The lock manager that carries the marks {@link CatchUp} reads. Default `navigator.locks`. */
  locks?: LockManagerLike
  /** How long `catchUp` waits for a newer set's message. Default 2 000 ms. */
  catchUpTimeout?: number
  /** Where to say, once, that BroadcastChannel is missing, or that a stored value was invalid. */
  logger?: Logger
  /** The BroadcastChannel constructor. Default `globalThis.BroadcastChannel`. */
  BroadcastChannel?: typeof BroadcastChannel
  /**
   * Where the DPoP key pair of a set is kept (database `reauth`, object store `dpop-keys`):
   * messages and `persist` carry only its thumbprint. Default `globalThis.indexedDB`; without
   * one, key pairs stay in this tab's memory and other tabs cannot use a DPoP set.
   */
  indexedDB?: IndexedDbLike
}

/**
 * A {@link TokenStore} in memory, shared with the other tabs' stores over a BroadcastChannel.
 * It holds a token set, or the end of the session after a terminal refresh failure.
 */
export interface BroadcastStore extends TokenStore, CatchUp {
  /** The set, the end of the session, or `undefined` (signed out, or nothing learned yet). */
  get(): StoredSession | undefined
  /** Called on every change: this store's own writes and those that came from other tabs. */
  subscribe(listener: (value: StoredSession | undefined) => void): () => void
  /**
   * The tokens, once this store knows them: at once when it has a set, else the first set
   * another tab answers with, else `undefined` after `timeout` ms (default 500) when no tab has
   * one — or at once when the session is known to have ended (sign in again). Await it before
   * the first request in a new tab.
   */
  ready(options?: { timeout?: number }): Promise<TokenSet | undefined>
  /** Stop sharing: close the channel, drop the listeners and this tab's mark. */
  close(): void
}

/**
 * `tokens` of a `set` is a token set or the end of the session; `jkt` the thumbprint of its
 * DPoP key pair (in IndexedDB; on the wire, `tokens.dpopJkt`).
 */
type Message =
  | { type: 'set'; stamp: Stamp; tokens: StoredSession; jkt?: string | undefined }
  | { type: 'clear'; stamp: Stamp }
  | { type: 'ask' }

/** A message from another context: `undefined` unless well formed, with a stamp not beyond `limit`. */
function readMessage(data: unknown, limit: number): Message | undefined {
  if (typeof data !== 'object' || data === null) return undefined
  const message = data as { type?: unknown; stamp?: unknown; tokens?: unknown }
  if (message.type === 'ask') return { type: 'ask' }
  const stamp = readStamp(message.stamp, limit)
  if (!stamp) return undefined
  if (message.type === 'clear') return { type: 'clear', stamp }
  if (message.type !== 'set') return undefined
  const read = fromWire(message.tokens)
  return read && { type: 'set', stamp, tokens: read.tokens, jkt: read.jkt }
}

/**
 * This tab's copy from `persist`. A stamp ahead of the present by more than the skew (a clock
 * set back since, or a forged value) counts as written now, not refused: the set is this
 * tab's own.
 */
function readSaved(
  text: string,
): { tokens: StoredSession; stamp: Stamp; jkt: string | undefined } | undefined {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return undefined
  }
  if (typeof value !== 'object' || value === null) return undefined
  const saved = value as { stamp?: unknown }
  const limit = stampLimit()
  const stamp = saved.stamp as Partial<Stamp> | undefined
  const bounded =
    typeof stamp?.time === 'number' && stamp.time > limit ? { ...stamp, time: Date.now() } : stamp
  const message = readMessage({ ...value, stamp: bounded, type: 'set' }, limit)
  return message?.type === 'set'
    ? { tokens: message.tokens, stamp: message.stamp, jkt: message.jkt }
    : undefined
}

/**
 * A token store in memory whose changes reach every other tab's store on the same channel
 * (BroadcastChannel), so when one tab refreshes, the others adopt the new set at once, with
 * no grant of their own: the engine's waiters resolve through `subscribe`, and its re-read
 * inside the lock finds the set. A new tab asks the open ones for the current set (`await
 * store.ready()`). Each change carries a timestamp and its writer, so a late or reordered
 * message never puts back an older set; a stamp more than a minute ahead of the present is
 * ignored, so a forged far-future message cannot freeze the tabs. Tokens never touch storage
 * unless you pass `persist`. After a terminal refresh failure the store holds, and shares, the
 * end of the session: every tab's engine fails fast and fires `sessionExpired` once.
 *
 * Any same-origin context (a script on any page of the origin, a worker) can join the channel
 * and `ask`: it receives the full set, refresh token included — the same exposure as web
 * storage. The channel protects against other origins, not against scripts on your own.
 *
 * Use it with {@link createWebLock} and pass the store to the lock too (`createWebLock({ store
 * })`): the lock makes one tab at a time refresh, and on each grant of the lock the store
 * first catches up with the newest set any tab stored. Where BroadcastChannel is missing it
 * is a plain memory store and says so once through `logger.warn`.
 *
 * @example
 * import { createEngine } from '@reauth/core'
 * import { createBroadcastStore, createWebLock } from '@reauth/browser'
 *
 * const store = createBroadcastStore({ logger: console })
 * if (!(await store.ready())) await store.set(await signIn())
 * const engine = createEngine({ refresh, store, lock: createWebLock({ store, logger: console }) })
 */
export function createBroadcastStore(options: BroadcastStoreOptions = {}): BroadcastStore {
  if (typeof options !== 'object' || options === null) {
    throw new ReauthOptionsError('createBroadcastStore() options must be an object')
  }
  const {
    channel: name = 'reauth',
    key = 'reauth.tokens',
    persist,
    logger,
    catchUpTimeout = 2_000,
  } = options
  const log = createLogger(logger)
  if (typeof name !== 'string' || name === '') {
    throw new ReauthOptionsError('"channel" must be a non-empty string')
  }
  if (typeof key !== 'string' || key === '') {
    throw new ReauthOptionsError('"key" must be a non-empty string')
  }
  if (persist !== undefined && typeof persist?.getItem !== 'function') {
    throw new ReauthOptionsError('"persist" must be a Storage (sessionStorage or localStorage)')
  }
  if (options.initial !== undefined && !toTokenSet(options.initial)) {
    throw new ReauthOptionsError(
      '"initial" must be a token set ({ accessToken, tokenType: "Bearer", … })',
    )
  }
  if (typeof catchUpTimeout !== 'number' || !(catchUpTimeout > 0)) {
    throw new ReauthOptionsError('"catchUpTimeout" must be a number of ms > 0')
  }
  if (options.locks !== undefined && typeof options.locks?.request !== 'function') {
    throw new ReauthOptionsError('"locks" must be a LockManager (navigator.locks)')
  }
  const Channel = options.BroadcastChannel ?? globalThis.BroadcastChannel
  const locks = options.locks ?? defaultLocks()
  const marks = locks && createStampMarks(locks, `reauth-store:${name}`)
  const id = randomId()
  const listeners = new Set<(value: StoredSession | undefined) => void>()
  const waiting = new Set<(tokens: TokenSet | undefined) => void>()
  let current: StoredSession | undefined
  /** The thumbprint of `current`'s DPoP key pair. */
  let currentJkt: string | undefined
  let stamp: Stamp = NONE
  let closed = false
  /** Reading a saved DPoP set's key pair from IndexedDB, or storing `initial`'s. */
  let loading: Promise<void> | undefined
  const keys = createDpopKeys(`broadcast:${name}`, options.indexedDB ?? defaultIndexedDb(), log)
  const catchUp = createCatchUp(marks, () => stamp, catchUpTimeout)

  function save(): void {
    if (!persist) return
    try {
      if (current) {
        persist.setItem(key, JSON.stringify({ tokens: toWire(current, currentJkt), stamp }))
      } else persist.removeItem(key)
    } catch {
      log.warn(`Could not write the token set to storage under "${key}"`)
    }
  }

  /** Apply a change; resolves once its mark is published, so other tabs can learn of it. */
  function apply(value: StoredSession | undefined, at: Stamp, jkt?: string): Promise<void> {
    // Another tab replaced or ended the set: its old pair is not this one's any more.
    if (currentJkt !== undefined && currentJkt !== jkt) keys.forget(currentJkt)
    current = value
    currentJkt = jkt
    stamp = at
    save()
    catchUp.changed()
    if (value) {
      // An ended session answers `ready()` too: no tokens, sign in again.
      const tokens = isSessionEnd(value) ? undefined : value
      for (const resolve of [...waiting]) resolve(tokens)
      waiting.clear()
    }
    for (const listener of listeners) {
      try {
        listener(value)
      } catch {
        log.error('A token store listener threw')
      }
    }
    return marks?.publish(at) ?? Promise.resolve()
  }

  if (persist) {
    let text: string | null = null
    try {
      text = persist.getItem(key)
    } catch {
      // Storage that throws on read (blocked by the user): start empty.
    }
    if (text !== null) {
      const saved = readSaved(text)
      if (saved?.jkt !== undefined) {
        const { jkt } = saved
        // The pair is in IndexedDB: the set is this tab's once it is read (`ready()` waits).
        loading = keys
          .load(jkt)
          .then(
            (pair) => {
              if (!pair) {
                log.warn(`The DPoP key pair of the token set under "${key}" is missing: ignored`)
              } else if (!closed && newer(saved.stamp, stamp) && !isSessionEnd(saved.tokens)) {
                void apply({ ...saved.tokens, dpopKey: pair }, saved.stamp, jkt)
              }
            },
            () => log.warn(`Could not read the DPoP key pair of the token set under "${key}"`),
          )
          .finally(() => {
            loading = undefined
          })
      } else if (saved) {
        current = saved.tokens
        stamp = saved.stamp
        void marks?.publish(stamp)
      } else {
        log.warn(`Ignored an invalid token set in storage under "${key}"`)
      }
    }
  }

  function post(message: Message): void {
    // Never the key pair: the set carries its thumbprint, the pair stays in IndexedDB.
    const data =
      message.type === 'set'
        ? { type: 'set', stamp: message.stamp, tokens: toWire(message.tokens, message.jkt) }
        : message
    try {
      channel?.postMessage(data)
    } catch {
      log.warn('Could not share the token set with other tabs')
    }
  }

  let channel: BroadcastChannel | undefined
  if (typeof Channel === 'function') {
    channel = new Channel(name)
    channel.onmessage = (event: MessageEvent) => {
      // A stamp far ahead (forged) would win over every later write: bounded, see STAMP_SKEW_MS.
      const message = readMessage(event.data, stampLimit(stamp))
      if (!message || closed) return
      if (message.type === 'ask') {
        if (stamp === NONE) return
        post(
          current
            ? { type: 'set', stamp, tokens: current, jkt: currentJkt }
            : { type: 'clear', stamp },
        )
        return
      }
      if (!newer(message.stamp, stamp)) return
      if (message.type === 'clear') {
        void apply(undefined, message.stamp)
        return
      }
      const { tokens, jkt } = message
      if (jkt === undefined || isSessionEnd(tokens)) {
        void apply(tokens, message.stamp)
        return
      }
      // A DPoP set: its pair was stored in IndexedDB before the message was posted.
      const cached = keys.cached(jkt)
      if (cached) {
        void apply({ ...tokens, dpopKey: cached }, message.stamp, jkt)
        return
      }
      keys.load(jkt).then(
        (pair) => {
          // A newer change may have come meanwhile; a pair already deleted means one did.
          if (!pair || closed || !newer(message.stamp, stamp)) return
          void apply({ ...tokens, dpopKey: pair }, message.stamp, jkt)
        },
        () => log.warn('Could not read the DPoP key pair of a token set from another tab'),
      )
    }
  } else {
    log.warn(
      'BroadcastChannel is not available: tokens are kept in this tab only and not shared with other tabs',
    )
  }

  const initial = options.initial && toOwnSession(options.initial)
  if (initial && !isSessionEnd(initial) && initial.dpopKey) {
    const pair = initial.dpopKey
    loading = keys
      .put(pair)
      .then(
        (jkt) => {
          if (closed) return
          const at = nextStamp(stamp, id)
          post({ type: 'set', stamp: at, tokens: initial, jkt })
          void apply(initial, at, jkt)
        },
        () => log.warn('Could not store the DPoP key pair of "initial" in IndexedDB'),
      )
      .finally(() => {
        loading = undefined
      })
  } else if (initial) {
    void apply(initial, nextStamp(stamp, id))
    post({ type: 'set', stamp, tokens: initial })
  } else if (!current) {
    post({ type: 'ask' })
  }

  /** Drop the pair of a set this tab replaced or ended: the key lives as long as its tokens. */
  async function discard(old: string | undefined, kept: string | undefined): Promise<void> {
    if (old !== undefined && old !== kept) await keys.remove(old)
  }

  return {
    get: () => current,
    async set(value) {
      const copy = toOwnSession(value)
      if (!copy) throw new ReauthOptionsError('The token set to store is invalid')
      // The pair is in IndexedDB before any tab hears of the set that names it.
      const jkt = !isSessionEnd(copy) && copy.dpopKey ? await keys.put(copy.dpopKey) : undefined
      const old = currentJkt
      const at = nextStamp(stamp, id)
      // Post first: the message is on its way before the mark tells anyone to wait for it.
      post({ type: 'set', stamp: at, tokens: copy, jkt })
      await Promise.all([apply(copy, at, jkt), discard(old, jkt)])
    },
    async clear() {
      const old = currentJkt
      const at = nextStamp(stamp, id)
      post({ type: 'clear', stamp: at })
      await Promise.all([apply(undefined, at), discard(old, undefined)])
    },
    subscribe(listener) {
      listeners.add(listener)
      return () => {
        listeners.delete(listener)
      }
    },
    async ready({ timeout = 500 } = {}) {
      if (loading) await loading
      if (current) return Promise.resolve(isSessionEnd(current) ? undefined : current)
      return new Promise((resolve) => {
        const done = (tokens: TokenSet | undefined) => {
          clearTimeout(timer)
          waiting.delete(done)
          resolve(tokens)
        }
        const timer = setTimeout(() => done(undefined), timeout)
        waiting.add(done)
        post({ type: 'ask' })
      })
    },
    catchUp: () => catchUp.catchUp(),
    close() {
      closed = true
      listeners.clear()
      marks?.close()
      channel?.close()
    },
  }
}
