/**
 * The page each tab runs in the browser tests: one engine per tab on a BroadcastChannel store
 * and a Web Lock, with fetch, ky and axios (xhr and fetch adapters) on it. Bundled by esbuild
 * from the packages' TypeScript sources.
 */
import { attachReauth } from '@reauth/axios'
import { createBroadcastStore, createWebLock } from '@reauth/browser'
import {
  createEngine,
  type Engine,
  OAuthError,
  parseTokenResponse,
  type TokenSet,
} from '@reauth/core'
import { createFetch } from '@reauth/fetch'
import { withReauth } from '@reauth/ky'
import axios from 'axios'
import ky from 'ky'

export interface BurstResult {
  ok: number
  failed: string[]
}

export interface TabApi {
  start(tab: string, tokens?: TokenSet): Promise<boolean>
  burst(perClient: number): Promise<BurstResult>
  stats(): ReturnType<Engine['stats']>
  crossTab(): boolean
  logs(): string[]
  /** A sign-in in this tab: store a new set (shared with the other tabs). */
  setTokens(tokens: TokenSet): Promise<void>
  /** The access token this tab's engine would send now, without refreshing. */
  current(): Promise<string | undefined>
}

declare global {
  interface Window {
    reauthTab: TabApi
  }
}

let engine: Engine | undefined
let lockCrossTab = false
const logs: string[] = []
const logger = {
  warn: (message: string) => logs.push(message),
  error: (message: string) => logs.push(message),
}

window.reauthTab = {
  async start(tab, tokens) {
    const store = createBroadcastStore({
      channel: 'e2e',
      logger,
      ...(tokens ? { initial: tokens } : {}),
    })
    const known = await store.ready({ timeout: 2_000 })
    const lock = createWebLock({ store, logger })
    lockCrossTab = lock.crossTab
    engine = createEngine({
      store,
      lock,
      logger,
      async refresh({ tokens: current, signal, startedAt }) {
        const response = await fetch('/token', {
          method: 'POST',
          headers: { 'x-tab': tab },
          body: new URLSearchParams({
            grant_type: 'refresh_token',
            refresh_token: current.refreshToken ?? '',
          }),
          signal,
        })
        const json = (await response.json()) as { error?: string }
        if (!response.ok) {
          throw new OAuthError({ error: json.error ?? 'server_error', status: response.status })
        }
        return parseTokenResponse(json, { sentAt: startedAt })
      },
    })
    return known !== undefined
  },

  async burst(perClient) {
    if (!engine) throw new Error('start() first')
    const origin = window.location.origin
    const viaFetch = createFetch(engine)
    const viaKy = withReauth(ky.create({ prefixUrl: `${origin}/api/` }), engine)
    const viaXhr = axios.create({ baseURL: `${origin}/api/`, adapter: 'xhr' })
    attachReauth(viaXhr, engine)
    const viaAxiosFetch = axios.create({ baseURL: `${origin}/api/`, adapter: 'fetch' })
    attachReauth(viaAxiosFetch, engine)
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
        [`axios-xhr ${i}`, () => viaXhr.get(`data?client=axios-xhr&i=${i}`)],
        [`axios-fetch ${i}`, () => viaAxiosFetch.get(`data?client=axios-fetch&i=${i}`)],
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

  stats() {
    if (!engine) throw new Error('start() first')
    return engine.stats()
  },
  crossTab: () => lockCrossTab,
  logs: () => [...logs],
  async setTokens(tokens) {
    if (!engine) throw new Error('start() first')
    await engine.setTokens(tokens)
  },
  async current() {
    if (!engine) throw new Error('start() first')
    return (await engine.getToken())?.accessToken
  },
}
