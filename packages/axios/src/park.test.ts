import {
  createEngine,
  isSessionExpiredError,
  OAuthError,
  RefreshError,
  type RefreshFunction,
  type TokenSet,
} from '@reauth/core'
import axios, {
  AxiosError,
  AxiosHeaders,
  type AxiosInstance,
  type AxiosResponse,
  type InternalAxiosRequestConfig,
  isCancel,
} from 'axios'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { deferred } from '../../../test/support/deferred.js'
import { attachReauth } from './attach-reauth.js'

const API = 'https://api.example.test'
const OTHER = 'https://other.example.test'

const expired: TokenSet = {
  accessToken: 'old',
  tokenType: 'Bearer',
  refreshToken: 'r0',
  expiresAt: Date.now() - 1_000,
}
const fresh: TokenSet = { accessToken: 'new', tokenType: 'Bearer', refreshToken: 'r1' }

/** An axios adapter that answers 200 with the path, recording what was sent. */
function fakeServer() {
  const sent: { path: string; method: string; authorization: unknown; data: unknown }[] = []
  const adapter = async (config: InternalAxiosRequestConfig): Promise<AxiosResponse> => {
    const url = new URL(axios.getUri({ baseURL: config.baseURL ?? '', url: config.url ?? '' }))
    sent.push({
      path: url.pathname,
      method: String(config.method).toUpperCase(),
      authorization: config.headers.get('Authorization') ?? null,
      data: config.data,
    })
    return { data: { path: url.pathname }, status: 200, statusText: 'OK', headers: {}, config }
  }
  return { sent, adapter }
}

/** Counts the headers axios builds for calls (it does for each call before any interceptor runs). */
function countMerges(): () => number {
  const spy = vi.spyOn(AxiosHeaders, 'concat')
  return () => spy.mock.calls.length
}

afterEach(() => {
  vi.useRealTimers()
  vi.restoreAllMocks()
})

function setUp(
  refresh: RefreshFunction,
  defaults: Record<string, unknown> = {},
  tokens: TokenSet = expired,
  before?: (api: AxiosInstance) => void,
) {
  const server = fakeServer()
  const engine = createEngine({ tokens, refresh })
  const api = axios.create({ baseURL: API, adapter: server.adapter, ...defaults })
  before?.(api)
  const detach = attachReauth(api, engine)
  return { server, engine, api, detach }
}

describe('a call that would wait for a refresh is parked before axios builds it', () => {
  it('axios builds nothing while the refresh runs; then each call goes once, with the new token', async () => {
    const gate = deferred<TokenSet>()
    const refresh = vi.fn(() => gate.promise)
    // An interceptor added before reauth's runs after it: it sees each config once, when it goes.
    const onRequest = vi.fn((config: InternalAxiosRequestConfig) => config)
    const { server, engine, api } = setUp(refresh, {}, expired, (instance) =>
      instance.interceptors.request.use(onRequest),
    )
    const calls = [
      api.get('/a'),
      api.post('/b', { n: 1 }),
      api.request({ url: '/c', method: 'put', data: 'x' }),
      // axios also takes a URL string first (its types do not say so).
      (api.request as unknown as (url: string) => Promise<AxiosResponse>)('/d'),
      api.delete('/e', { params: { q: 1 } }),
      api.patchForm('/f', { n: 2 }),
    ]
    await vi.waitFor(() => expect(engine.stats().joins).toBe(5))
    await vi.waitFor(() => expect(refresh).toHaveBeenCalledTimes(1))
    expect(onRequest).not.toHaveBeenCalled()
    expect(server.sent).toHaveLength(0)
    gate.resolve(fresh)
    const responses = await Promise.all(calls)
    expect(responses.map((r) => r.data.path)).toEqual(['/a', '/b', '/c', '/d', '/e', '/f'])
    expect(server.sent.map((s) => [s.method, s.authorization])).toEqual([
      ['GET', 'Bearer new'],
      ['POST', 'Bearer new'],
      ['PUT', 'Bearer new'],
      ['GET', 'Bearer new'],
      ['DELETE', 'Bearer new'],
      ['PATCH', 'Bearer new'],
    ])
    expect(server.sent[1]?.data).toBe('{"n":1}')
    expect(server.sent[2]?.data).toBe('x')
    // The call's config reaches axios without reauth's ticket on it.
    for (const response of responses)
      expect(Object.keys(response.config)).not.toContain('reauth.parked')
    expect(refresh).toHaveBeenCalledTimes(1)
  })

  it('a parked call holds no axios config: axios merges it only when it goes', async () => {
    const gate = deferred<TokenSet>()
    const { engine, api } = setUp(() => gate.promise)
    const merges = countMerges()
    const call = api.get('/a', { headers: { 'X-Trace': '1' } })
    await vi.waitFor(() => expect(engine.stats().proactive).toBe(1))
    expect(merges()).toBe(0)
    gate.resolve(fresh)
    await call
    expect(merges()).toBeGreaterThan(0)
  })

  it('a refresh failure rejects each parked call with its own error; axios never sees them', async () => {
    const gate = deferred<TokenSet>()
    const { server, api } = setUp(() => gate.promise)
    const first = api.get('/a').catch((e: unknown) => e)
    const second = api.post('/b', 'x').catch((e: unknown) => e)
    gate.reject(new OAuthError({ error: 'invalid_grant', status: 400 }))
    const [a, b] = await Promise.all([first, second])
    expect(isSessionExpiredError(a)).toBe(true)
    expect(isSessionExpiredError(b)).toBe(true)
    expect(a).not.toBe(b)
    expect(server.sent).toHaveLength(0)
  })

  it('the caller’s abort ends a parked call with axios’s CanceledError, nothing sent', async () => {
    const gate = deferred<TokenSet>()
    const { server, engine, api } = setUp(() => gate.promise)
    const controller = new AbortController()
    const aborted = api.get('/a', { signal: controller.signal }).catch((e: unknown) => e)
    const other = api.get('/b')
    await vi.waitFor(() => expect(engine.stats().joins).toBe(1))
    controller.abort()
    const error = await aborted
    expect(isCancel(error)).toBe(true)
    expect((error as AxiosError).config?.url).toBe('/a')
    gate.resolve(fresh)
    expect((await other).data).toEqual({ path: '/b' })
    expect(server.sent.map((s) => s.path)).toEqual(['/b'])
  })

  it('the call’s timeout bounds the park: axios’s timeout error, nothing sent, no timer left', async () => {
    vi.useFakeTimers()
    const { server, api } = setUp(() => new Promise<TokenSet>(() => {}), { timeout: 200 })
    const first = api.get('/a').catch((e: unknown) => e)
    await vi.advanceTimersByTimeAsync(100)
    const second = api.post('/b', 'x', { timeoutErrorMessage: 'too slow' }).catch((e: unknown) => e)
    await vi.advanceTimersByTimeAsync(100)
    const error = (await first) as AxiosError
    expect(error).toBeInstanceOf(AxiosError)
    expect(error.code).toBe('ECONNABORTED')
    expect(error.message).toBe('timeout of 200ms exceeded')
    expect(error.config?.url).toBe('/a')
    await vi.advanceTimersByTimeAsync(99)
    expect(server.sent).toHaveLength(0)
    await vi.advanceTimersByTimeAsync(1)
    expect(((await second) as AxiosError).message).toBe('too slow')
    expect(server.sent).toHaveLength(0)
    // The engine's own refresh timeout is the only timer left.
    expect(vi.getTimerCount()).toBe(1)
  })

  it('a released call sends with what is left of its timeout', async () => {
    vi.useFakeTimers()
    const gate = deferred<TokenSet>()
    const { api } = setUp(() => gate.promise, { timeout: 1_000 })
    const call = api.get('/a')
    await vi.advanceTimersByTimeAsync(400)
    gate.resolve(fresh)
    const response = await call
    expect(response.config.timeout).toBe(600)
    expect(vi.getTimerCount()).toBe(0)
  })

  it('calls reauth leaves alone are never parked', async () => {
    const gate = deferred<TokenSet>()
    const { server, engine, api } = setUp(() => gate.promise)
    const parked = api.get('/parked')
    await vi.waitFor(() => expect(engine.stats().proactive).toBe(1))
    await api.get('/optout', { reauth: false })
    await api.get('/own', { headers: { Authorization: 'Basic dXNlcg==' } })
    await api.get(`${OTHER}/elsewhere`)
    expect(server.sent.map((s) => [s.path, s.authorization])).toEqual([
      ['/optout', null],
      ['/own', 'Basic dXNlcg=='],
      ['/elsewhere', null],
    ])
    gate.resolve(fresh)
    await parked
    expect(server.sent.at(-1)).toMatchObject({ path: '/parked', authorization: 'Bearer new' })
  })

  it('an instance with its own Authorization, a cancelToken or a later interceptor: waits in the interceptor', async () => {
    const gate = deferred<TokenSet>()
    const { server, engine, api } = setUp(() => gate.promise)
    const parked = api.get('/parked')
    await vi.waitFor(() => expect(engine.stats().proactive).toBe(1))
    api.defaults.headers.common.Authorization = 'Basic dXNlcg=='
    await api.get('/own')
    delete api.defaults.headers.common.Authorization
    const source = axios.CancelToken.source()
    const withToken = api.get('/token', { cancelToken: source.token })
    const merges = countMerges()
    // An interceptor added after attachReauth runs before reauth's and may set headers.
    const eject = api.interceptors.request.use((config) => config)
    const intercepted = api.get('/intercepted')
    await vi.waitFor(() => expect(engine.stats().joins).toBe(2))
    // Not parked: axios built both configs, they wait in reauth's interceptor.
    expect(merges()).toBeGreaterThan(0)
    expect(server.sent.map((s) => [s.path, s.authorization])).toEqual([['/own', 'Basic dXNlcg==']])
    gate.resolve(fresh)
    await Promise.all([parked, withToken, intercepted])
    api.interceptors.request.eject(eject)
    expect(server.sent.map((s) => s.authorization)).toEqual([
      'Basic dXNlcg==',
      'Bearer new',
      'Bearer new',
      'Bearer new',
    ])
  })

  it('a transient failure of the grant before expiry sends the parked call with the current token: one grant', async () => {
    const valid: TokenSet = { ...expired, expiresAt: Date.now() + 2_000 }
    const refresh = vi.fn(async (): Promise<TokenSet> => {
      throw new RefreshError('token endpoint down', { retryable: true, status: 503 })
    })
    const { server, api } = setUp(refresh, {}, valid)
    const response = await api.get('/me')
    expect(response.status).toBe(200)
    expect(server.sent.map((s) => s.authorization)).toEqual(['Bearer old'])
    expect(refresh).toHaveBeenCalledTimes(1)
  })

  it('a parked call that fails still reaches the response interceptors, with the config axios built', async () => {
    vi.useFakeTimers()
    const gate = deferred<TokenSet>()
    const seen: unknown[] = []
    const { api } = setUp(
      () => gate.promise,
      {},
      expired,
      (instance) => {
        // The README's redirect-to-login interceptor, added before attachReauth.
        instance.interceptors.response.use(undefined, (error: unknown) => {
          seen.push(error)
          return Promise.reject(error)
        })
      },
    )
    const timed = api.get('/slow', { timeout: 100 }).catch((e: unknown) => e)
    const failed = api.postForm('/form', { n: 1 }).catch((e: unknown) => e)
    await vi.advanceTimersByTimeAsync(100)
    const timeout = (await timed) as AxiosError
    expect(timeout.code).toBe('ECONNABORTED')
    expect(typeof timeout.config?.headers.get).toBe('function')
    expect(timeout.config?.method).toBe('get')
    gate.reject(new OAuthError({ error: 'invalid_grant', status: 400 }))
    const expiredError = await failed
    expect(isSessionExpiredError(expiredError)).toBe(true)
    expect(seen).toEqual([timeout, expiredError])
  })

  it('the opt-outs a plain call would honour keep a call out of the lot', async () => {
    const gate = deferred<TokenSet>()
    const { server, engine, api } = setUp(() => gate.promise)
    const parked = api.get('/parked')
    await vi.waitFor(() => expect(engine.stats().proactive).toBe(1))
    api.defaults.headers.post.Authorization = 'Basic cG9zdA=='
    await api.request({ url: '/post', method: 'POST' })
    delete api.defaults.headers.post.Authorization
    await api.get('/grouped', {
      headers: { common: { Authorization: 'Basic Z3JvdXA=' } } as unknown as AxiosHeaders,
    })
    api.defaults.reauth = false
    await api.get('/defaults-optout')
    delete api.defaults.reauth
    expect(server.sent.map((s) => [s.path, s.authorization])).toEqual([
      ['/post', 'Basic cG9zdA=='],
      ['/grouped', 'Basic Z3JvdXA='],
      ['/defaults-optout', null],
    ])
    gate.resolve(fresh)
    await parked
  })

  it('with the non-legacy interceptor order, an interceptor added before reauth keeps calls out of the lot', async () => {
    const gate = deferred<TokenSet>()
    const { server, api } = setUp(
      () => gate.promise,
      { transitional: { legacyInterceptorReqResOrdering: false } },
      expired,
      (instance) =>
        instance.interceptors.request.use((config) => {
          if (config.url === '/own') config.headers.set('Authorization', 'Basic b3du')
          return config
        }),
    )
    await api.get('/own')
    expect(server.sent.map((s) => [s.path, s.authorization])).toEqual([['/own', 'Basic b3du']])
    gate.resolve(fresh)
  })

  it('detached while parked: the call goes to axios as it was made, no ticket with it', async () => {
    const gate = deferred<TokenSet>()
    const { server, engine, api, detach } = setUp(() => gate.promise)
    const call = api.get('/a')
    await vi.waitFor(() => expect(engine.stats().proactive).toBe(1))
    detach()
    gate.resolve(fresh)
    const response = await call
    expect(Object.keys(response.config)).not.toContain('reauth.parked')
    expect(server.sent).toEqual([
      { path: '/a', method: 'GET', authorization: null, data: undefined },
    ])
  })

  it('two engines attached, then detached in the order they were attached: no call parks any more', async () => {
    const server = fakeServer()
    const api = axios.create({ baseURL: API, adapter: server.adapter })
    const hung = createEngine({ tokens: expired, refresh: () => new Promise<TokenSet>(() => {}) })
    const other = createEngine({ tokens: fresh, refresh: async () => fresh })
    const detachHung = attachReauth(api, hung)
    const detachOther = attachReauth(api, other)
    detachHung()
    detachOther()
    // The first wrapper stays under the second's (it was wrapped again), but passes calls on.
    expect((await api.get('/x')).status).toBe(200)
    expect(server.sent).toEqual([
      { path: '/x', method: 'GET', authorization: null, data: undefined },
    ])
    expect(hung.stats().proactive).toBe(0)
  })

  it('after interceptors.request.clear() nothing is parked: the call goes untouched', async () => {
    const gate = deferred<TokenSet>()
    const { server, api } = setUp(() => gate.promise)
    api.interceptors.request.clear()
    const response = await api.get('/a')
    expect(Object.keys(response.config)).not.toContain('reauth.parked')
    expect(server.sent).toEqual([
      { path: '/a', method: 'GET', authorization: null, data: undefined },
    ])
    gate.resolve(fresh)
  })

  it('detach puts the instance’s methods back', async () => {
    const api = axios.create({ baseURL: API })
    const { get, post, request } = api
    const detach = attachReauth(api, createEngine({ tokens: fresh, refresh: async () => fresh }))
    expect(api.get).not.toBe(get)
    detach()
    expect([api.get, api.post, api.request]).toEqual([get, post, request])
  })
})
