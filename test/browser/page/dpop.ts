/**
 * The page of the DPoP browser test: one engine per tab on a @reauth/browser store (the
 * localStorage store, or the BroadcastChannel store with `persist: sessionStorage`) and a Web
 * Lock; the tokens are DPoP-bound and the key pair lives in IndexedDB. Bundled by esbuild from
 * the packages' TypeScript sources.
 */
import { createBroadcastStore, createStorageStore, createWebLock } from '@reauth/browser'
import {
  createDpopProof,
  createEngine,
  dpopThumbprint,
  type Engine,
  generateDpopKeyPair,
  OAuthError,
  parseTokenResponse,
  type TokenSet,
} from '@reauth/core'
import { createFetch } from '@reauth/fetch'
import { withReauth } from '@reauth/ky'
import ky from 'ky'

export type StoreKind = 'storage' | 'broadcast'

export interface DpopTabApi {
  /** Start this tab's engine; with `signIn`, sign in first (a new key pair). Resolves: tokens known. */
  start(tab: string, kind: StoreKind, signIn: boolean): Promise<boolean>
  burst(perClient: number): Promise<{ ok: number; failed: string[] }>
  grants(): number
  /** The thumbprint of the key pair of the set this tab's store holds, if any. */
  thumbprint(): Promise<string | undefined>
  /** What happens to an export of the private key: `'rejected: <name>'` or `'exported'`. */
  exportPrivate(): Promise<string>
  extractable(): Promise<boolean | undefined>
  /** Sign out in this tab (engine.clear, the store's clear). */
  signOut(): Promise<void>
  /** The keys of the records in IndexedDB `reauth` / `dpop-keys`. */
  keyRecords(): Promise<string[]>
  /** What the page's Web Storage holds under the store's key. */
  storedText(): string | null
  logs(): string[]
}

declare global {
  interface Window {
    reauthDpop: DpopTabApi
  }
}

let engine: Engine | undefined
let store: ReturnType<typeof createStorageStore> | ReturnType<typeof createBroadcastStore>
let persisted: Storage = localStorage
const logs: string[] = []
const logger = {
  warn: (message: string) => logs.push(message),
  error: (message: string) => logs.push(message),
}

async function tokenRequest(
  body: Record<string, string>,
  key: CryptoKeyPair,
  tab: string,
  signal?: AbortSignal,
) {
  const url = `${location.origin}/token`
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'x-tab': tab, DPoP: await createDpopProof(key, { htm: 'POST', htu: url }) },
    body: new URLSearchParams(body),
    ...(signal ? { signal } : {}),
  })
  const json = (await response.json()) as { error?: string }
  if (!response.ok) {
    throw new OAuthError({ error: json.error ?? 'server_error', status: response.status })
  }
  return json
}

async function held(): Promise<TokenSet | undefined> {
  const value = await store.get()
  return value && 'accessToken' in value ? value : undefined
}

window.reauthDpop = {
  async start(tab, kind, signIn) {
    persisted = kind === 'storage' ? localStorage : sessionStorage
    store =
      kind === 'storage'
        ? createStorageStore(localStorage, { logger })
        : createBroadcastStore({ channel: 'dpop', persist: sessionStorage, logger })
    if (kind === 'broadcast') await (store as ReturnType<typeof createBroadcastStore>).ready()
    const lock = createWebLock({ store, logger })
    engine = createEngine({
      store,
      lock,
      logger,
      async refresh({ tokens, signal, startedAt, dpop }) {
        if (!dpop) throw new Error('the engine gave no DPoP key pair')
        const json = await tokenRequest(
          { grant_type: 'refresh_token', refresh_token: tokens.refreshToken ?? '' },
          dpop,
          tab,
          signal,
        )
        return parseTokenResponse(json, { sentAt: startedAt })
      },
    })
    if (signIn) {
      const dpopKey = await generateDpopKeyPair()
      const startedAt = Date.now()
      const json = await tokenRequest({ grant_type: 'sign_in' }, dpopKey, tab)
      await engine.setTokens({ ...parseTokenResponse(json, { sentAt: startedAt }), dpopKey })
    }
    return (await held()) !== undefined
  },

  async burst(perClient) {
    if (!engine) throw new Error('start() first')
    const viaFetch = createFetch(engine)
    const viaKy = withReauth(ky.create({ prefixUrl: `${location.origin}/api/` }), engine)
    const calls: Array<[string, () => Promise<unknown>]> = []
    for (let i = 0; i < perClient; i++) {
      calls.push(
        [
          `fetch ${i}`,
          async () => {
            const response = await viaFetch(`/api/data?client=fetch&i=${i}`)
            if (!response.ok) throw new Error(`status ${response.status}`)
            return response.json()
          },
        ],
        [`ky ${i}`, () => viaKy.get(`data?client=ky&i=${i}`).json()],
      )
    }
    const settled = await Promise.allSettled(calls.map(([, call]) => call()))
    const failed: string[] = []
    settled.forEach((outcome, index) => {
      if (outcome.status === 'rejected') {
        failed.push(`${calls[index]?.[0]}: ${String((outcome.reason as Error)?.message)}`)
      }
    })
    return { ok: settled.length - failed.length, failed }
  },

  grants: () => engine?.stats().grants ?? 0,

  async thumbprint() {
    const key = (await held())?.dpopKey
    return key && dpopThumbprint(key.publicKey)
  },

  async exportPrivate() {
    const key = (await held())?.dpopKey
    if (!key) return 'no key'
    try {
      await crypto.subtle.exportKey('jwk', key.privateKey)
      return 'exported'
    } catch (error) {
      return `rejected: ${(error as Error).name}`
    }
  },

  async extractable() {
    return (await held())?.dpopKey?.privateKey.extractable
  },

  async signOut() {
    if (!engine) throw new Error('start() first')
    await engine.clear()
  },

  keyRecords() {
    return new Promise<string[]>((resolve, reject) => {
      const open = indexedDB.open('reauth')
      open.onerror = () => reject(open.error)
      open.onsuccess = () => {
        const db = open.result
        if (!db.objectStoreNames.contains('dpop-keys')) {
          db.close()
          return resolve([])
        }
        const keys = db.transaction('dpop-keys').objectStore('dpop-keys').getAllKeys()
        keys.onerror = () => reject(keys.error)
        keys.onsuccess = () => {
          db.close()
          resolve(keys.result.map(String))
        }
      }
    })
  },

  storedText: () => persisted.getItem('reauth.tokens'),
  logs: () => [...logs],
}
