import { dpopThumbprint, type Logger } from '@reauth/core'
import { KeyStoreError } from './errors.js'

/** The IndexedDB database and object store the DPoP key pairs live in. */
export const KEY_DATABASE = 'reauth'
export const KEY_OBJECT_STORE = 'dpop-keys'

/**
 * Where a token store keeps the DPoP key pair (RFC 9449) of its set: IndexedDB, which keeps a
 * `CryptoKeyPair` by structured clone (a non-extractable private key stays non-extractable,
 * survives a reload and is shared by the origin's tabs), plus a copy in memory. The token
 * JSON carries only the key's thumbprint (`dpopJkt`), never key material.
 *
 * Records are keyed by the store's key and the thumbprint (`<scope> <jkt>`): a reader pairs a
 * set only with the key it names, and per-tab stores (sessionStorage) on one key do not
 * overwrite each other's pairs.
 *
 * Without IndexedDB (not a browser) pairs are kept in this memory only: a DPoP set's key is
 * then lost on reload and not shared.
 */
export interface DpopKeys {
  /** The pair of thumbprint `jkt` if this context has it in memory. */
  cached(jkt: string): CryptoKeyPair | undefined
  /** Store `pair` (IndexedDB and memory); resolves with its thumbprint. Throws {@link KeyStoreError}. */
  put(pair: CryptoKeyPair): Promise<string>
  /** The pair of thumbprint `jkt`: from memory, else IndexedDB; `undefined` when there is none. */
  load(jkt: string): Promise<CryptoKeyPair | undefined>
  /** Delete the pair of thumbprint `jkt` (IndexedDB and memory). Failures are logged, not thrown. */
  remove(jkt: string): Promise<void>
  /** Drop the memory copy of `jkt` (another context deleted or replaced it). */
  forget(jkt: string): void
}

/** The parts of an `IDBFactory` this uses. */
export type IndexedDbLike = Pick<IDBFactory, 'open'>

interface KeyRecord {
  jkt: string
  keyPair: CryptoKeyPair
}

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result)
    req.onerror = () => reject(req.error)
  })
}

function done(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve()
    tx.onerror = () => reject(tx.error)
    tx.onabort = () => reject(tx.error)
  })
}

function isPair(value: unknown): value is CryptoKeyPair {
  const pair = value as Partial<CryptoKeyPair> | null
  return (
    typeof pair === 'object' &&
    pair !== null &&
    typeof pair.privateKey === 'object' &&
    pair.privateKey !== null &&
    typeof pair.publicKey === 'object' &&
    pair.publicKey !== null
  )
}

/** The default factory: `globalThis.indexedDB`, or `undefined` outside browsers. */
export function defaultIndexedDb(): IndexedDbLike | undefined {
  const factory = (globalThis as { indexedDB?: IndexedDbLike }).indexedDB
  return typeof factory?.open === 'function' ? factory : undefined
}

/**
 * The key pairs of one token store (`scope`, e.g. `storage:reauth.tokens`). `factory` `null`
 * means no IndexedDB: memory only (said once through `logger.warn`).
 */
export function createDpopKeys(
  scope: string,
  factory: IndexedDbLike | undefined,
  log: Required<Pick<Logger, 'warn'>>,
): DpopKeys {
  const memory = new Map<string, CryptoKeyPair>()
  const thumbprints = new WeakMap<CryptoKey, Promise<string>>()
  let opening: Promise<IDBDatabase> | undefined
  let warned = false

  const recordKey = (jkt: string) => `${scope} ${jkt}`

  function warnMemoryOnly(): void {
    if (warned) return
    warned = true
    log.warn(
      'IndexedDB is not available: DPoP key pairs are kept in memory only (lost on reload, not shared with other tabs)',
    )
  }

  function open(): Promise<IDBDatabase> {
    if (!factory) return Promise.reject(new Error('no IndexedDB'))
    opening ??= (async () => {
      const openAt = (version?: number) => {
        const req =
          version === undefined ? factory.open(KEY_DATABASE) : factory.open(KEY_DATABASE, version)
        req.onupgradeneeded = () => {
          if (!req.result.objectStoreNames.contains(KEY_OBJECT_STORE)) {
            req.result.createObjectStore(KEY_OBJECT_STORE)
          }
        }
        return request(req)
      }
      // The current version (a new database gets the object store at once); a `reauth`
      // database made by someone else without it gets it in the next version.
      let db = await openAt()
      if (!db.objectStoreNames.contains(KEY_OBJECT_STORE)) {
        const next = db.version + 1
        db.close()
        db = await openAt(next)
      }
      // Another context upgrades the database: let it, and reopen next time.
      db.onversionchange = () => {
        db.close()
        opening = undefined
      }
      return db
    })()
    // A failed open is tried again next time.
    opening.catch(() => {
      opening = undefined
    })
    return opening
  }

  async function transact<T>(
    mode: IDBTransactionMode,
    work: (objects: IDBObjectStore) => IDBRequest<T>,
  ): Promise<T> {
    const db = await open()
    const tx = db.transaction(KEY_OBJECT_STORE, mode)
    const finished = done(tx)
    const [result] = await Promise.all([request(work(tx.objectStore(KEY_OBJECT_STORE))), finished])
    return result
  }

  function thumbprint(pair: CryptoKeyPair): Promise<string> {
    let jkt = thumbprints.get(pair.publicKey)
    if (!jkt) {
      jkt = dpopThumbprint(pair.publicKey)
      thumbprints.set(pair.publicKey, jkt)
      jkt.catch(() => thumbprints.delete(pair.publicKey))
    }
    return jkt
  }

  return {
    cached: (jkt) => memory.get(jkt),
    async put(pair) {
      let jkt: string
      try {
        jkt = await thumbprint(pair)
      } catch (cause) {
        throw new KeyStoreError(
          'KEY_INVALID',
          'The DPoP key pair has no usable public key (ES256) to take the thumbprint of',
          { cause },
        )
      }
      if (memory.get(jkt) === pair) return jkt
      if (factory) {
        const record: KeyRecord = { jkt, keyPair: pair }
        try {
          await transact('readwrite', (objects) => objects.put(record, recordKey(jkt)))
        } catch (cause) {
          throw new KeyStoreError(
            'KEY_STORE_FAILED',
            'Could not store the DPoP key pair in IndexedDB',
            { cause },
          )
        }
      } else {
        warnMemoryOnly()
      }
      memory.set(jkt, pair)
      return jkt
    },
    async load(jkt) {
      const known = memory.get(jkt)
      if (known) return known
      if (!factory) {
        warnMemoryOnly()
        return undefined
      }
      let record: unknown
      try {
        record = await transact('readonly', (objects) => objects.get(recordKey(jkt)))
      } catch (cause) {
        throw new KeyStoreError(
          'KEY_STORE_FAILED',
          'Could not read the DPoP key pair from IndexedDB',
          { cause },
        )
      }
      const pair = (record as Partial<KeyRecord> | undefined)?.keyPair
      if ((record as Partial<KeyRecord> | undefined)?.jkt !== jkt || !isPair(pair)) return undefined
      thumbprints.set(pair.publicKey, Promise.resolve(jkt))
      memory.set(jkt, pair)
      return pair
    },
    async remove(jkt) {
      memory.delete(jkt)
      if (!factory) return
      try {
        await transact('readwrite', (objects) => objects.delete(recordKey(jkt)))
      } catch {
        log.warn('Could not delete a DPoP key pair from IndexedDB')
      }
    },
    forget(jkt) {
      memory.delete(jkt)
    },
  }
}
