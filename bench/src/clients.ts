/**
 * Every client the benchmarks compare, each set up the way its own README shows, with default
 * options unless a row's name says otherwise. A client's `get()` is one `GET /api` whose body is
 * read; it resolves `true` on a 200 and `false` on any failure (it never throws).
 */
import { attachReauth } from '@reauth/axios'
import {
  createEngine,
  type Engine,
  type EngineOptions,
  generateDpopKeyPair,
  OAuthError,
  parseTokenResponse,
  type TokenSet,
} from '@reauth/core'
import { createFetch } from '@reauth/fetch'
import { withReauth } from '@reauth/ky'
import axios, { type AxiosError } from 'axios'
import { createAuthRefresh } from 'axios-auth-refresh'
import {
  applyAuthTokenInterceptor,
  type IAuthTokens,
  type StorageType,
  setAuthTokens,
} from 'axios-jwt'
import ky from 'ky'
import type { Server } from './control.js'
import type { TokenResponse } from './server.js'

export interface Client {
  get(): Promise<boolean>
  /** reauth rows: the engine, for its counters. */
  engine?: Engine
}

export interface ClientContext {
  server: Server
  /** The token pair the server issued at reset. */
  tokens: TokenResponse
  /** When `tokens` were requested (for `expires_in`). */
  sentAt: number
  /** Extra engine options (reauth rows). */
  engine?: Partial<EngineOptions>
}

export interface Variant {
  name: string
  /** The HTTP client underneath (axios, ky, fetch). */
  client: 'axios' | 'ky' | 'fetch'
  kind: 'bare' | 'reauth' | 'peer'
  make(context: ClientContext): Client | Promise<Client>
}

const ok = (status: number) => status === 200

/** How every client's `get()` ends: `true` on a 200, `false` on any failure (never throws). */
export async function settle(run: () => Promise<number>): Promise<boolean> {
  try {
    return ok(await run())
  } catch {
    return false
  }
}

function form(refreshToken: string): URLSearchParams {
  return new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken })
}

/** The refresh function a reauth user writes over `fetch` (README: "your own function"). */
function fetchRefresh(tokenUrl: string): EngineOptions['refresh'] {
  return async ({ tokens, signal, startedAt }) => {
    const response = await fetch(tokenUrl, {
      method: 'POST',
      body: form(tokens.refreshToken ?? ''),
      signal,
    })
    const body = (await response.json()) as { error?: string }
    if (!response.ok)
      throw new OAuthError({ error: body.error ?? 'server_error', status: response.status })
    return parseTokenResponse(body, { sentAt: startedAt })
  }
}

/**
 * The engine of a reauth row. With `dpopKey`, the server's tokens are held as DPoP-bound
 * (`tokenType: 'DPoP'` and the key): every send carries `Authorization: DPoP <token>` and a
 * proof signed for it, as with a provider that binds tokens (the bench's server issues the same
 * tokens and only checks that a proof is there).
 */
function engineFor(context: ClientContext, dpopKey?: CryptoKeyPair): Engine {
  const parsed: TokenSet = parseTokenResponse(context.tokens, { sentAt: context.sentAt })
  const tokens: TokenSet = dpopKey ? { ...parsed, tokenType: 'DPoP', dpopKey } : parsed
  return createEngine({
    tokens,
    ...context.engine,
    refresh: context.engine?.refresh ?? fetchRefresh(context.server.tokenUrl),
  })
}

function bearer(context: ClientContext): string {
  return `Bearer ${context.tokens.access_token}`
}

/** Where the peers' users keep their tokens: a variable their refresh logic updates. */
interface Held {
  access: string
  refresh: string
}

export const bareAxios: Variant = {
  name: 'axios (bare, token by hand)',
  client: 'axios',
  kind: 'bare',
  make(context) {
    const api = axios.create({ baseURL: context.server.origin })
    const headers = { Authorization: bearer(context) }
    return { get: () => settle(async () => (await api.get('/api', { headers })).status) }
  },
}

function reauthAxiosVariant(dpop: boolean): Variant {
  return {
    name: dpop ? '@reauth/axios (DPoP)' : '@reauth/axios',
    client: 'axios',
    kind: 'reauth',
    async make(context) {
      const api = axios.create({ baseURL: context.server.origin })
      const engine = engineFor(context, dpop ? await generateDpopKeyPair() : undefined)
      attachReauth(api, engine)
      return { engine, get: () => settle(async () => (await api.get('/api')).status) }
    },
  }
}

export const reauthAxios: Variant = reauthAxiosVariant(false)
/** The same with DPoP-bound tokens: a proof (ES256) signed for every send. */
export const reauthAxiosDpop: Variant = reauthAxiosVariant(true)

/** axios-auth-refresh as its README shows: a request interceptor that sets the stored token, a refresh logic on global axios. */
function authRefresh(name: string, deduplicateRefresh: boolean | undefined): Variant {
  return {
    name,
    client: 'axios',
    kind: 'peer',
    make(context) {
      const api = axios.create({ baseURL: context.server.origin })
      const held: Held = {
        access: context.tokens.access_token,
        refresh: context.tokens.refresh_token,
      }
      const refreshAuthLogic = (failedRequest: AxiosError) =>
        axios.post(context.server.tokenUrl, form(held.refresh)).then((tokenRefreshResponse) => {
          const data = tokenRefreshResponse.data as TokenResponse
          held.access = data.access_token
          held.refresh = data.refresh_token
          if (failedRequest.response) {
            failedRequest.response.config.headers.Authorization = `Bearer ${data.access_token}`
          }
          return Promise.resolve()
        })
      createAuthRefresh(
        api,
        refreshAuthLogic,
        deduplicateRefresh === undefined ? {} : { deduplicateRefresh },
      )
      api.interceptors.request.use((request) => {
        request.headers.Authorization = `Bearer ${held.access}`
        return request
      })
      return { get: () => settle(async () => (await api.get('/api')).status) }
    },
  }
}

export const axiosAuthRefresh = authRefresh('axios-auth-refresh (defaults)', undefined)
export const axiosAuthRefreshNoDedupe = authRefresh(
  'axios-auth-refresh (deduplicateRefresh: false)',
  false,
)

/** axios-jwt as its README shows, with a storage for Node (it has no default off the browser). */
export function axiosJwt(tokenExpireFudge?: number): Variant {
  return {
    name:
      tokenExpireFudge === undefined
        ? 'axios-jwt (defaults: 10 s fudge)'
        : `axios-jwt (tokenExpireFudge: ${tokenExpireFudge} s)`,
    client: 'axios',
    kind: 'peer',
    async make(context) {
      const axiosInstance = axios.create({ baseURL: context.server.origin })
      const items = new Map<string, string>()
      const storage: StorageType = {
        get: async (key) => items.get(key) ?? null,
        set: async (key, value) => {
          items.set(key, value)
        },
        remove: async (key) => {
          items.delete(key)
        },
      }
      const requestRefresh = async (refreshToken: string): Promise<IAuthTokens> => {
        const response = await axios.post(context.server.tokenUrl, form(refreshToken))
        const data = response.data as TokenResponse
        return { accessToken: data.access_token, refreshToken: data.refresh_token }
      }
      applyAuthTokenInterceptor(axiosInstance, {
        requestRefresh,
        getStorage: () => storage,
        ...(tokenExpireFudge === undefined ? {} : { tokenExpireFudge }),
      })
      await setAuthTokens({
        accessToken: context.tokens.access_token,
        refreshToken: context.tokens.refresh_token,
      })
      return { get: () => settle(async () => (await axiosInstance.get('/api')).status) }
    },
  }
}

/**
 * The same bare client again, as a cell of its own: its ratio to the bare cell is what the
 * harness measures for no difference at all — the noise floor of the overhead table.
 */
export function twin(bare: Variant): Variant {
  return {
    ...bare,
    name: bare.name.replace('(bare, token by hand)', '(bare, an identical second cell)'),
  }
}

/**
 * Bare ky with one `afterResponse` hook that does nothing: what any such hook costs (ky clones
 * every response for each `afterResponse` hook, a tee of its body). reauth's ky adapter has one.
 */
export const kyAfterResponseHook: Variant = kyByHand(
  'ky + one no-op afterResponse hook (token by hand)',
  { afterResponse: [() => {}] },
)

export const bareKy: Variant = kyByHand('ky (bare, token by hand)', undefined)

/** ky with the token attached by hand (and `hooks`, when given). */
function kyByHand(name: string, hooks: { afterResponse: Array<() => void> } | undefined): Variant {
  return {
    name,
    client: 'ky',
    kind: 'bare',
    make(context) {
      const api = ky.create({ prefixUrl: context.server.origin, ...(hooks ? { hooks } : {}) })
      const headers = { Authorization: bearer(context) }
      return {
        get: () =>
          settle(async () => {
            await api.get('api', { headers }).json()
            return 200
          }),
      }
    },
  }
}

export const reauthKy: Variant = {
  name: '@reauth/ky',
  client: 'ky',
  kind: 'reauth',
  make(context) {
    const engine = engineFor(context)
    const api = withReauth(ky.create({ prefixUrl: context.server.origin }), engine)
    return {
      engine,
      get: () =>
        settle(async () => {
          await api.get('api').json()
          return 200
        }),
    }
  },
}

/**
 * ky's readme "retry with a fresh token on a 401 error" afterResponse hook, written as the readme
 * shows it, adapted only to call our token endpoint (and keep the rotated refresh token), with
 * the readme's beforeRequest hook that sets the header on the initial request.
 */
export const kyRecipe: Variant = {
  name: 'ky readme afterResponse recipe',
  client: 'ky',
  kind: 'peer',
  make(context) {
    const held: Held = {
      access: context.tokens.access_token,
      refresh: context.tokens.refresh_token,
    }
    const api = ky.extend({
      prefixUrl: context.server.origin,
      hooks: {
        beforeRequest: [
          (request, _options, { retryCount }) => {
            // Only set default auth header on initial request, not on retries
            if (retryCount === 0) {
              request.headers.set('Authorization', `Bearer ${held.access}`)
            }
          },
        ],
        afterResponse: [
          // Or retry with a fresh token on a 401 error
          async (request, _options, response, state) => {
            if (response.status === 401 && state.retryCount === 0) {
              // Only refresh on first 401, not on subsequent retries
              const { access_token: token, refresh_token } = await ky
                .post(context.server.tokenUrl, { body: form(held.refresh) })
                .json<TokenResponse>()
              held.access = token
              held.refresh = refresh_token

              const headers = new Headers(request.headers)
              headers.set('Authorization', `Bearer ${token}`)

              return ky.retry({
                request: new Request(request, { headers }),
                code: 'TOKEN_REFRESHED',
              })
            }
          },
        ],
      },
    })
    return {
      get: () =>
        settle(async () => {
          await api.get('api').json()
          return 200
        }),
    }
  },
}

export const bareFetch: Variant = {
  name: 'fetch (bare, token by hand)',
  client: 'fetch',
  kind: 'bare',
  make(context) {
    const url = context.server.apiUrl
    const init = { headers: { Authorization: bearer(context) } }
    return {
      get: () =>
        settle(async () => {
          const response = await fetch(url, init)
          await response.json()
          return response.status
        }),
    }
  },
}

function reauthFetchVariant(dpop: boolean): Variant {
  return {
    name: dpop ? '@reauth/fetch (DPoP)' : '@reauth/fetch',
    client: 'fetch',
    kind: 'reauth',
    async make(context) {
      const engine = engineFor(context, dpop ? await generateDpopKeyPair() : undefined)
      const api = createFetch(engine, { origins: [context.server.origin] })
      const url = context.server.apiUrl
      return {
        engine,
        get: () =>
          settle(async () => {
            const response = await api(url)
            await response.json()
            return response.status
          }),
      }
    },
  }
}

export const reauthFetch: Variant = reauthFetchVariant(false)
/** The same with DPoP-bound tokens: a proof (ES256) signed for every send. */
export const reauthFetchDpop: Variant = reauthFetchVariant(true)
