import { Readable } from 'node:stream'
import { inspect } from 'node:util'
import {
  createEngine,
  type Engine,
  isReauthOptionsError,
  isRefreshError,
  isSessionExpiredError,
  OAuthError,
  parseTokenResponse,
  type TokenSet,
} from '@reauth/core'
import axios, {
  type AxiosAdapter,
  AxiosError,
  type AxiosInstance,
  type AxiosResponse,
  type InternalAxiosRequestConfig,
  isAxiosError,
} from 'axios'
import { HttpResponse, http } from 'msw'
import { setupServer } from 'msw/node'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { deferred } from '../../../test/support/deferred.js'
import { attachReauth } from './attach-reauth.js'

const API = 'https://api.example.test'
const OTHER = 'https://other.example.test'

interface Sent {
  url: string
  method: string
  authorization: string | null
  timeout: number | undefined
  data: unknown
}

function respond(
  config: InternalAxiosRequestConfig,
  status: number,
  data: unknown,
  headers: Record<string, string> = {},
): AxiosResponse {
  const response: AxiosResponse = { data, status, statusText: String(status), headers, config }
  if (status >= 400) {
    throw new AxiosError(
      `Request failed with status code ${status}`,
      AxiosError.ERR_BAD_REQUEST,
      config,
      null,
      response,
    )
  }
  return response
}

/** An adapter that answers 401 to `expired` (and to no token) and 200 to anything else, recording every request. */
function fakeServer(expired = 'Bearer old') {
  const sent: Sent[] = []
  const handler = vi.fn(async (config: InternalAxiosRequestConfig) => {
    const url = axios.getUri({
      ...(config.baseURL === undefined ? {} : { baseURL: config.baseURL }),
      ...(config.url === undefined ? {} : { url: config.url }),
      ...(config.allowAbsoluteUrls === undefined
        ? {}
        : { allowAbsoluteUrls: config.allowAbsoluteUrls }),
    })
    const authorization = config.headers.get('Authorization')
    sent.push({
      url,
      method: String(config.method).toUpperCase(),
      authorization: typeof authorization === 'string' ? authorization : null,
      timeout: config.timeout,
      data: config.data,
    })
    if (authorization === expired) {
      return respond(
        config,
        401,
        { error: 'invalid_token' },
        { 'www-authenticate': 'Bearer error="invalid_token"' },
      )
    }
    return respond(config, 200, { ok: true })
  })
  return { sent, adapter: handler as AxiosAdapter, calls: handler }
}

const oldTokens: TokenSet = { accessToken: 'old', tokenType: 'Bearer', refreshToken: 'r0' }

function engineWith(options: { logger?: object; tokens?: TokenSet } = {}) {
  const refresh = vi.fn(async () => ({ accessToken: 'new', tokenType: 'Bearer' }) as TokenSet)
  const engine = createEngine({ tokens: options.tokens ?? oldTokens, refresh, ...options })
  return { engine, refresh }
}

function caught(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected a rejection')
    },
    (error: unknown) => error,
  )
}

afterEach(() => {
  vi.unstubAllGlobals()
})

describe('attachReauth: where the token goes', () => {
  it('attaches the token to the baseURL origin only; absolute URLs elsewhere go untouched', async () => {
    const server = fakeServer('never')
    const { engine } = engineWith()
    const api = axios.create({ baseURL: `${API}/v1`, adapter: server.adapter })
    attachReauth(api, engine)
    await api.get('/me')
    await api.get(`${API}/other-path`)
    await api.get(`${OTHER}/public`)
    expect(server.sent.map((s) => [s.url, s.authorization])).toEqual([
      [`${API}/v1/me`, 'Bearer old'],
      [`${API}/other-path`, 'Bearer old'],
      [`${OTHER}/public`, null],
    ])
  })

  it('honours allowAbsoluteUrls: false the way axios builds the URL', async () => {
    const server = fakeServer('never')
    const { engine } = engineWith()
    const api = axios.create({ baseURL: API, adapter: server.adapter, allowAbsoluteUrls: false })
    attachReauth(api, engine)
    await api.get(`${OTHER}/x`)
    expect(server.sent[0]?.url.startsWith(`${API}/`)).toBe(true)
    expect(server.sent[0]?.authorization).toBe('Bearer old')
  })

  it('uses explicit origins instead of the baseURL', async () => {
    const server = fakeServer('never')
    const { engine } = engineWith()
    const api = axios.create({ baseURL: API, adapter: server.adapter })
    attachReauth(api, engine, { origins: [OTHER] })
    await api.get('/me')
    await api.get(`${OTHER}/x`)
    expect(server.sent.map((s) => s.authorization)).toEqual([null, 'Bearer old'])
  })

  it('an engine-wide origins list wins over the baseURL (explicit beats inferred)', async () => {
    const server = fakeServer('never')
    const engine = createEngine({ tokens: oldTokens, refresh: vi.fn(), origins: [OTHER] })
    const api = axios.create({ baseURL: API, adapter: server.adapter })
    attachReauth(api, engine)
    await api.get('/me')
    await api.get(`${OTHER}/x`)
    expect(server.sent.map((s) => s.authorization)).toEqual([null, 'Bearer old'])
  })

  it('falls back to the engine origins without an absolute baseURL, and otherwise throws', async () => {
    const server = fakeServer('never')
    const engine = createEngine({ tokens: oldTokens, refresh: vi.fn(), origins: [API] })
    const api = axios.create({ adapter: server.adapter })
    attachReauth(api, engine)
    await api.get(`${API}/me`)
    await api.get(`${OTHER}/me`)
    expect(server.sent.map((s) => s.authorization)).toEqual(['Bearer old', null])

    const { engine: bare } = engineWith()
    const error = (() => {
      try {
        attachReauth(axios.create(), bare)
      } catch (e) {
        return e
      }
    })()
    expect(isReauthOptionsError(error)).toBe(true)
    expect((error as Error).message).toMatch(/"origins" is required/)
    expect(() => attachReauth(axios.create({ baseURL: '/api' }), bare)).toThrow(/"origins"/)
  })

  it('treats a relative baseURL in a browser as the page origin', async () => {
    vi.stubGlobal('location', { href: `${API}/app/page`, origin: API })
    const server = fakeServer('never')
    const { engine } = engineWith()
    const api = axios.create({ baseURL: '/api', adapter: server.adapter })
    attachReauth(api, engine)
    await api.get('/me')
    await api.get(`${OTHER}/me`)
    expect(server.sent.map((s) => s.authorization)).toEqual(['Bearer old', null])
  })

  it('works on the default axios instance, and detach removes both interceptors', async () => {
    const server = fakeServer()
    const { engine, refresh } = engineWith()
    const detach = attachReauth(axios, engine, { origins: [API] })
    try {
      expect((await axios.get(`${API}/me`, { adapter: server.adapter })).status).toBe(200)
    } finally {
      detach()
      detach()
    }
    expect(refresh).toHaveBeenCalledTimes(1)
    await axios.get(`${API}/me`, { adapter: server.adapter })
    expect(server.sent.map((s) => s.authorization)).toEqual(['Bearer old', 'Bearer new', null])
    expect(refresh).toHaveBeenCalledTimes(1)
  })

  it('leaves a request with its own Authorization alone, and honours reauth: false', async () => {
    const server = fakeServer()
    const { engine, refresh } = engineWith()
    const api = axios.create({ baseURL: API, adapter: server.adapter })
    attachReauth(api, engine)
    const own = await caught(api.get('/me', { headers: { Authorization: 'Bearer old' } }))
    const skipped = await api.get('/me', { reauth: false })
    expect((own as AxiosError).response?.status).toBe(401)
    expect(skipped.status).toBe(200)
    expect(server.sent.map((s) => s.authorization)).toEqual(['Bearer old', null])
    expect(refresh).not.toHaveBeenCalled()
  })

  it('replaces its own header when a config is sent again (axios-retry resends error.config)', async () => {
    let failNext = true
    const seen: unknown[] = []
    const adapter: AxiosAdapter = async (config) => {
      seen.push(config.headers.get('Authorization'))
      if (failNext) {
        failNext = false
        return respond(config, 503, 'busy')
      }
      return respond(config, 200, 'ok')
    }
    const { engine } = engineWith()
    const api = axios.create({ baseURL: API, adapter })
    attachReauth(api, engine)
    const error = (await caught(api.get('/me'))) as AxiosError
    await engine.setTokens({ accessToken: 'rotated', tokenType: 'Bearer' })
    expect((await api.request(error.config!)).status).toBe(200)
    expect(seen).toEqual(['Bearer old', 'Bearer rotated'])
  })
})

describe('attachReauth: a valid token goes in the same turn', () => {
  it('sends the request synchronously, as axios does without interceptors', async () => {
    const server = fakeServer('never')
    const { engine } = engineWith()
    const api = axios.create({ baseURL: API, adapter: server.adapter })
    attachReauth(api, engine)
    for (const call of [() => api.get('/a'), () => api({ url: '/b' }), () => api.post('/c', {})]) {
      const before = server.calls.mock.calls.length
      const pending = call()
      // axios's synchronous path: the adapter already has the request, with the token.
      expect(server.calls.mock.calls.length).toBe(before + 1)
      await pending
    }
    expect(server.sent.map((s) => s.authorization)).toEqual(Array(3).fill('Bearer old'))
  })

  it('decides on the config an interceptor that runs first has changed', async () => {
    const server = fakeServer('never')
    const { engine } = engineWith()
    const api = axios.create({ baseURL: API, adapter: server.adapter })
    attachReauth(api, engine)
    // Added after reauth's: axios runs it first. It moves one call to another origin and
    // names its own Authorization on another; reauth sees both changes.
    api.interceptors.request.use(
      (config) => {
        if (config.url === '/elsewhere') config.baseURL = OTHER
        if (config.url === '/own') config.headers.set('Authorization', 'Basic mine')
        return config
      },
      null,
      { synchronous: true },
    )
    await api.get('/elsewhere')
    await api.get('/own')
    await api.get('/me')
    expect(server.sent.map((s) => [s.url, s.authorization])).toEqual([
      [`${OTHER}/elsewhere`, null],
      [`${API}/own`, 'Basic mine'],
      [`${API}/me`, 'Bearer old'],
    ])
  })

  it('with an asynchronous interceptor of yours, concurrent calls each get the token', async () => {
    const server = fakeServer('never')
    const { engine } = engineWith()
    const api = axios.create({ baseURL: API, adapter: server.adapter })
    // Added before reauth's: it runs after it, and makes axios take its promise chain.
    const seen: string[] = []
    api.interceptors.request.use(async (config) => {
      seen.push(String(config.headers.get('Authorization')))
      return config
    })
    attachReauth(api, engine)
    await Promise.all([api.get('/a'), api.get('/b'), api({ url: '/c' })])
    expect(seen).toEqual(Array(3).fill('Bearer old'))
    expect(server.sent.map((s) => s.authorization)).toEqual(Array(3).fill('Bearer old'))
  })

  it('waits (asynchronously) when the token expires within the margin, through api(config)', async () => {
    const server = fakeServer('never')
    const refresh = vi.fn(async () => ({ accessToken: 'new', tokenType: 'Bearer' }) as TokenSet)
    const engine = createEngine({
      tokens: { ...oldTokens, expiresAt: Date.now() + 1_000 },
      refresh,
    })
    const api = axios.create({ baseURL: API, adapter: server.adapter })
    attachReauth(api, engine)
    const pending = api({ url: '/me' })
    expect(server.calls).not.toHaveBeenCalled()
    await pending
    expect(refresh).toHaveBeenCalledTimes(1)
    expect(server.sent.map((s) => s.authorization)).toEqual(['Bearer new'])
  })
})

describe('attachReauth: refresh and replay', () => {
  it('refreshes once for concurrent 401s across instances that share an engine', async () => {
    const server = fakeServer()
    const { engine, refresh } = engineWith()
    const a = axios.create({ baseURL: API, adapter: server.adapter })
    const b = axios.create({ baseURL: API, adapter: server.adapter })
    attachReauth(a, engine)
    attachReauth(b, engine)
    const results = await Promise.all([a.get('/1'), b.get('/2'), a.get('/3'), b.get('/4')])
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200])
    expect(refresh).toHaveBeenCalledTimes(1)
    expect(server.sent.filter((s) => s.authorization === 'Bearer new')).toHaveLength(4)
    expect(engine.stats().replays).toBe(4)
  })

  it('replays through the same instance: each interceptor sees each exchange once', async () => {
    const server = fakeServer()
    const { engine } = engineWith()
    const api = axios.create({ baseURL: API, adapter: server.adapter })
    const order: string[] = []
    api.interceptors.request.use((config) => {
      order.push(`request ${config.headers.get('Authorization')}`)
      return config
    })
    api.interceptors.response.use(
      (response) => {
        order.push(`response ${response.status}`)
        return response.data
      },
      (error: AxiosError) => {
        order.push(`error ${error.response?.status}`)
        throw error
      },
    )
    attachReauth(api, engine)
    // The unwrapping response interceptor ran once: the call resolves with the data.
    expect(await api.get('/me')).toEqual({ ok: true })
    expect(order).toEqual(['request Bearer old', 'error 401', 'request Bearer new', 'response 200'])
  })

  it('warns once when response interceptors were added after attachReauth (they see replays twice)', async () => {
    const server = fakeServer()
    const warn = vi.fn()
    const { engine } = engineWith({ logger: { warn } })
    const api = axios.create({ baseURL: API, adapter: server.adapter })
    attachReauth(api, engine)
    api.interceptors.response.use((response) => response)
    await api.get('/me')
    await api.get('/me')
    expect(warn).toHaveBeenCalledTimes(1)
    expect(warn.mock.calls[0]?.[0]).toContain('after adding your own interceptors')
  })

  it('recovers a 401 that validateStatus lets through as a success', async () => {
    const server = fakeServer()
    const { engine, refresh } = engineWith()
    const api = axios.create({ baseURL: API, adapter: server.adapter, validateStatus: () => true })
    attachReauth(api, engine)
    const response = await api.get('/me')
    expect(response.status).toBe(200)
    expect(refresh).toHaveBeenCalledTimes(1)
    expect(server.sent.map((s) => s.authorization)).toEqual(['Bearer old', 'Bearer new'])
  })

  it('gives the caller the replay’s AxiosError when the replay fails again: no loop', async () => {
    const server = fakeServer()
    const refresh = vi.fn(async () => oldTokens)
    const engine = createEngine({ tokens: oldTokens, refresh })
    const api = axios.create({ baseURL: API, adapter: server.adapter })
    attachReauth(api, engine)
    const error = await caught(api.get('/me'))
    expect(axios.isAxiosError(error)).toBe(true)
    const axiosError = error as AxiosError
    expect(axiosError.status).toBe(401)
    expect(axiosError.response?.status).toBe(401)
    expect(axiosError.response?.data).toEqual({ error: 'invalid_token' })
    expect(axiosError.config?.url).toBe('/me')
    expect(server.sent).toHaveLength(2)
    expect(refresh).toHaveBeenCalledTimes(1)
  })

  it('sends the body the first send serialised, once transformed, within the call’s one timeout', async () => {
    const server = fakeServer()
    const { engine } = engineWith()
    let transforms = 0
    const api = axios.create({
      baseURL: API,
      adapter: server.adapter,
      transformRequest: [
        (data: unknown) => {
          transforms++
          return JSON.stringify({ wrapped: data, n: transforms })
        },
      ],
    })
    attachReauth(api, engine)
    expect((await api.post('/orders', { id: 1 }, { timeout: 1234 })).status).toBe(200)
    expect(transforms).toBe(1)
    expect(server.sent.map((s) => s.data)).toEqual([
      '{"wrapped":{"id":1},"n":1}',
      '{"wrapped":{"id":1},"n":1}',
    ])
    // One timeout bounds the whole call: each send gets what is left of it.
    const [first, second] = server.sent.map((s) => s.timeout as number)
    expect(first).toBeLessThanOrEqual(1234)
    expect(first).toBeGreaterThan(1000)
    expect(second).toBeLessThanOrEqual(first as number)
    expect(second).toBeGreaterThan(1000)
  })

  it('the call’s timeout bounds a wait on a hung refresh, with axios’s usual timeout error', async () => {
    vi.useFakeTimers()
    try {
      const hung = () => new Promise<TokenSet>(() => {})
      // Before the send: the token is inside the expiry margin, the grant hangs.
      const server = fakeServer()
      const expiring = createEngine({
        tokens: { ...oldTokens, expiresAt: Date.now() + 1_000 },
        refresh: hung,
        refreshTimeout: 60_000,
      })
      const api = axios.create({ baseURL: API, adapter: server.adapter, timeout: 200 })
      attachReauth(api, expiring)
      const call = caught(api.get('/me'))
      await vi.advanceTimersByTimeAsync(200)
      const error = await call
      expect(isAxiosError(error)).toBe(true)
      expect(error).toMatchObject({ code: 'ECONNABORTED', message: 'timeout of 200ms exceeded' })
      expect(server.sent).toHaveLength(0)
      // After a 401: the wait for the grant is bounded by what is left of the same timeout.
      const other = fakeServer()
      const reactive = createEngine({ tokens: oldTokens, refresh: hung, refreshTimeout: 60_000 })
      const api2 = axios.create({ baseURL: API, adapter: other.adapter })
      attachReauth(api2, reactive)
      const late = caught(api2.get('/me', { timeout: 300 }))
      await vi.advanceTimersByTimeAsync(300)
      expect(await late).toMatchObject({
        code: 'ECONNABORTED',
        message: 'timeout of 300ms exceeded',
      })
      expect(other.sent).toHaveLength(1)
    } finally {
      vi.useRealTimers()
    }
  })

  it('gives the caller the 401 for a stream body, logs why, and makes no grant', async () => {
    const server = fakeServer()
    const warn = vi.fn()
    const { engine, refresh } = engineWith({ logger: { warn } })
    const api = axios.create({ baseURL: API, adapter: server.adapter })
    attachReauth(api, engine)
    const error = await caught(api.post('/upload?secret=x', Readable.from(['chunk'])))
    expect((error as AxiosError).response?.status).toBe(401)
    expect(refresh).not.toHaveBeenCalled()
    expect(server.sent).toHaveLength(1)
    expect(warn.mock.calls[0]?.[0]).toContain(`Not replaying POST ${API}/upload`)
    expect(warn.mock.calls[0]?.[0]).toContain('stream')
    expect(warn.mock.calls[0]?.[0]).not.toContain('secret=x')
    expect(engine.stats().unreplayable).toBe(1)
  })

  it('lets errors other than auth failures through untouched', async () => {
    const { engine, refresh } = engineWith()
    const network = new AxiosError('Network Error', AxiosError.ERR_NETWORK)
    const api = axios.create({
      baseURL: API,
      adapter: async (config) => {
        if (config.url === '/down') throw network
        return respond(config, 403, 'forbidden')
      },
    })
    attachReauth(api, engine)
    expect(await caught(api.get('/down'))).toBe(network)
    expect(((await caught(api.get('/forbidden'))) as AxiosError).response?.status).toBe(403)
    expect(refresh).not.toHaveBeenCalled()
  })
})

describe('attachReauth: refresh failures and aborts', () => {
  it('surfaces a terminal failure as SessionExpiredError with the request’s AxiosError attached', async () => {
    const server = fakeServer()
    const engine = createEngine({
      tokens: oldTokens,
      refresh: async () => {
        throw new OAuthError({ error: 'invalid_grant', status: 400 })
      },
    })
    const api = axios.create({ baseURL: API, adapter: server.adapter })
    attachReauth(api, engine)
    const [a, b] = await Promise.all([caught(api.get('/a')), caught(api.get('/b'))])
    for (const [error, url] of [
      [a, '/a'],
      [b, '/b'],
    ] as const) {
      expect(isSessionExpiredError(error)).toBe(true)
      const response = (error as { response?: unknown }).response
      expect(axios.isAxiosError(response)).toBe(true)
      expect((response as AxiosError).response?.status).toBe(401)
      expect((response as AxiosError).config?.url).toBe(url)
      expect(Object.keys(error as object)).not.toContain('response')
      expect(JSON.stringify(error)).not.toContain('old')
    }
    // Each caller gets its own error; both are caused by the engine's one failure.
    expect(a).not.toBe(b)
    expect((a as Error).cause).toBe((b as Error).cause)
    expect(isSessionExpiredError((a as Error).cause)).toBe(true)
    expect((a as { error?: string }).error).toBe('invalid_grant')
    // Later requests fail fast without reaching the server.
    expect(isSessionExpiredError(await caught(api.get('/c')))).toBe(true)
    expect(server.sent).toHaveLength(2)
  })

  it('surfaces a transient failure as RefreshError with its fields', async () => {
    const server = fakeServer()
    const engine = createEngine({
      tokens: oldTokens,
      refresh: async () => {
        throw new OAuthError({ error: 'temporarily_unavailable', status: 503, retryAfter: 5000 })
      },
    })
    const api = axios.create({ baseURL: API, adapter: server.adapter })
    attachReauth(api, engine)
    const error = await caught(api.get('/a'))
    expect(isRefreshError(error)).toBe(true)
    expect(error).toMatchObject({ retryable: true, status: 503, retryAfter: 5000 })
    expect(axios.isAxiosError((error as { response?: unknown }).response)).toBe(true)
  })

  it('aborts only that request’s wait on the refresh, with axios’s CanceledError', async () => {
    const server = fakeServer()
    const gate = deferred()
    const refresh = vi.fn(async () => {
      await gate.promise
      return { accessToken: 'new', tokenType: 'Bearer' } as TokenSet
    })
    const engine = createEngine({ tokens: oldTokens, refresh })
    const api = axios.create({ baseURL: API, adapter: server.adapter })
    attachReauth(api, engine)
    const controller = new AbortController()
    const aborted = caught(api.get('/me', { signal: controller.signal }))
    const other = api.get('/me')
    await vi.waitFor(() => expect(engine.stats().joins).toBe(1))
    controller.abort()
    const error = await aborted
    expect(axios.isCancel(error)).toBe(true)
    expect((error as AxiosError).code).toBe('ERR_CANCELED')
    expect((error as AxiosError).config?.url).toBe('/me')
    expect(JSON.stringify(error)).not.toContain('Bearer old')
    gate.resolve()
    expect((await other).status).toBe(200)
    expect(refresh).toHaveBeenCalledTimes(1)
    expect(server.sent.filter((s) => s.authorization === 'Bearer new')).toHaveLength(1)
  })

  it('aborts a wait on a proactive refresh before the request is sent', async () => {
    const server = fakeServer()
    const gate = deferred()
    const engine = createEngine({
      tokens: { ...oldTokens, expiresAt: Date.now() + 1000 },
      refresh: async () => {
        await gate.promise
        return { accessToken: 'new', tokenType: 'Bearer' }
      },
    })
    const api = axios.create({ baseURL: API, adapter: server.adapter })
    attachReauth(api, engine)
    const controller = new AbortController()
    const aborted = caught(api.get('/me', { signal: controller.signal }))
    await vi.waitFor(() => expect(engine.stats().grants).toBe(1))
    controller.abort()
    expect(axios.isCancel(await aborted)).toBe(true)
    expect(server.sent).toHaveLength(0)
    gate.resolve()
    expect((await api.get('/me')).status).toBe(200)
  })
})

describe('a refresh function that uses the intercepted instance', () => {
  function tokenServer(tokenStatus: number) {
    const seen: Array<[string, unknown]> = []
    const adapter: AxiosAdapter = async (config) => {
      const authorization = config.headers.get('Authorization') ?? null
      seen.push([String(config.url), authorization])
      if (config.url === '/token') {
        return tokenStatus === 200
          ? respond(config, 200, { access_token: 'new', token_type: 'Bearer', expires_in: 60 })
          : respond(config, tokenStatus, { error: 'invalid_client' })
      }
      return authorization === 'Bearer new'
        ? respond(config, 200, { ok: true })
        : respond(config, 401, { error: 'invalid_token' })
    }
    return { seen, adapter }
  }

  function engineOver(getApi: () => AxiosInstance, tokens: TokenSet = oldTokens): Engine {
    return createEngine({
      tokens,
      refresh: async ({ signal, startedAt }) => {
        const body = new URLSearchParams({ grant_type: 'refresh_token' })
        const { data } = await getApi().post('/token', body, { signal })
        return parseTokenResponse(data, { sentAt: startedAt })
      },
    })
  }

  it('is not given a token and does not wait on its own refresh (reactive)', async () => {
    const { seen, adapter } = tokenServer(200)
    const api = axios.create({ baseURL: API, adapter })
    attachReauth(
      api,
      engineOver(() => api),
    )
    expect((await api.get('/me')).status).toBe(200)
    expect(seen).toEqual([
      ['/me', 'Bearer old'],
      ['/token', null],
      ['/me', 'Bearer new'],
    ])
  })

  it('is not given a token and does not wait on its own refresh (proactive)', async () => {
    const { seen, adapter } = tokenServer(200)
    const api = axios.create({ baseURL: API, adapter })
    attachReauth(
      api,
      engineOver(() => api, { ...oldTokens, expiresAt: Date.now() + 1000 }),
    )
    expect((await api.get('/me')).status).toBe(200)
    expect(seen).toEqual([
      ['/token', null],
      ['/me', 'Bearer new'],
    ])
  })

  it('does not loop when the token endpoint answers 401', async () => {
    const { seen, adapter } = tokenServer(401)
    const api = axios.create({ baseURL: API, adapter })
    const engine = engineOver(() => api)
    attachReauth(api, engine)
    const error = await caught(api.get('/me'))
    // The AxiosError's §5.2 body is read: invalid_client ends the session (no retry loop).
    expect(isSessionExpiredError(error)).toBe(true)
    expect(error).toMatchObject({ error: 'invalid_client', status: 401 })
    expect(seen).toEqual([
      ['/me', 'Bearer old'],
      ['/token', null],
    ])
    expect(engine.stats().grants).toBe(1)
  })
})

describe('attachReauth: validation', () => {
  it('validates its arguments at attach time', () => {
    const { engine } = engineWith()
    const api = axios.create({ baseURL: API })
    expect(() => attachReauth({} as AxiosInstance, engine)).toThrow(/"instance"/)
    expect(() => attachReauth(null as unknown as AxiosInstance, engine)).toThrow(/"instance"/)
    expect(() => attachReauth(api, {} as Engine)).toThrow(/"engine"/)
    expect(() => attachReauth(api, engine, { origins: ['not a url'] })).toThrow(/"origins"/)
  })
})

// The real adapters, through MSW: bodies are replayed byte-identical, aborts are CanceledErrors.
const hits: Array<{ authorization: string | null; contentType: string | null; bytes: Buffer }> = []
const mswServer = setupServer(
  http.post(`${API}/echo`, async ({ request }) => {
    const authorization = request.headers.get('authorization')
    hits.push({
      authorization,
      contentType: request.headers.get('content-type'),
      bytes: Buffer.from(await request.arrayBuffer()),
    })
    return authorization === 'Bearer new'
      ? HttpResponse.json({ ok: true })
      : HttpResponse.json({ error: 'invalid_token' }, { status: 401 })
  }),
)

describe.each(['http', 'fetch'] as const)('with the axios %s adapter', (adapter) => {
  beforeAll(() => mswServer.listen({ onUnhandledRequest: 'error' }))
  afterAll(() => mswServer.close())
  afterEach(() => {
    hits.length = 0
  })

  const form = () => {
    const data = new FormData()
    data.set('name', 'reauth')
    data.set('file', new Blob(['hello, file'], { type: 'text/plain' }), 'hello.txt')
    return data
  }

  it.each([
    ['JSON', () => ({ a: 1, text: 'ünïcode ✓' })],
    ['URLSearchParams', () => new URLSearchParams({ a: '1', b: 'two words' })],
    ['FormData', form],
  ])('replays a %s body byte-identical after a refresh', async (_, body) => {
    const { engine, refresh } = engineWith()
    const api = axios.create({ baseURL: API, adapter })
    attachReauth(api, engine)
    expect((await api.post('/echo', body())).data).toEqual({ ok: true })
    expect(refresh).toHaveBeenCalledTimes(1)
    const [first, replay] = hits
    expect([first?.authorization, replay?.authorization]).toEqual(['Bearer old', 'Bearer new'])
    expect(replay?.contentType).toBe(first?.contentType)
    expect(replay?.bytes.byteLength).toBeGreaterThan(0)
    expect(replay?.bytes.equals(first?.bytes ?? Buffer.alloc(0))).toBe(true)
  })

  it('keeps a multipart boundary the caller named', async () => {
    const { engine } = engineWith()
    const api = axios.create({ baseURL: API, adapter })
    attachReauth(api, engine)
    await api.post('/echo', form(), {
      headers: { 'Content-Type': 'multipart/form-data; boundary=caller-chosen-boundary' },
    })
    expect(hits.map((hit) => hit.contentType)).toEqual([
      'multipart/form-data; boundary=caller-chosen-boundary',
      'multipart/form-data; boundary=caller-chosen-boundary',
    ])
    expect(hits[1]?.bytes.equals(hits[0]?.bytes ?? Buffer.alloc(0))).toBe(true)
  })

  it('rejects an aborted wait with CanceledError', async () => {
    const gate = deferred()
    const engine = createEngine({
      tokens: oldTokens,
      refresh: async () => {
        await gate.promise
        return { accessToken: 'new', tokenType: 'Bearer' }
      },
    })
    const api = axios.create({ baseURL: API, adapter })
    attachReauth(api, engine)
    const controller = new AbortController()
    const aborted = caught(api.post('/echo', 'x', { signal: controller.signal }))
    const other = api.post('/echo', 'y')
    await vi.waitFor(() => expect(engine.stats().joins).toBe(1))
    controller.abort()
    expect(axios.isCancel(await aborted)).toBe(true)
    gate.resolve()
    expect((await other).status).toBe(200)
    expect(hits.map((hit) => hit.authorization)).toEqual(['Bearer old', 'Bearer old', 'Bearer new'])
  })
})

describe('the README refresh function that uses the same instance, on invalid_grant', () => {
  it('ends the session (SessionExpiredError, sessionExpired once), no second grant, no token in the error', async () => {
    const seen: string[] = []
    const adapter: AxiosAdapter = async (config) => {
      seen.push(String(config.url))
      if (config.url === '/oauth/token') {
        return respond(config, 400, { error: 'invalid_grant', error_description: 'revoked' })
      }
      return respond(config, 401, { error: 'invalid_token' })
    }
    const api = axios.create({ baseURL: API, adapter })
    const tokens: TokenSet = {
      accessToken: 'at-SECRET',
      tokenType: 'Bearer',
      refreshToken: 'rt-SECRET',
    }
    // The README's snippet, verbatim.
    const engine = createEngine({
      tokens,
      async refresh({ tokens, signal, startedAt }) {
        const body = new URLSearchParams({
          grant_type: 'refresh_token',
          refresh_token: tokens.refreshToken!,
        })
        const { data } = await api.post('/oauth/token', body, { signal })
        return parseTokenResponse(data, { sentAt: startedAt })
      },
    })
    attachReauth(api, engine)
    const expired = vi.fn()
    engine.on('sessionExpired', expired)
    const error = await caught(api.get('/me'))
    expect(isSessionExpiredError(error)).toBe(true)
    expect(error).toMatchObject({
      error: 'invalid_grant',
      errorDescription: 'revoked',
      status: 400,
    })
    expect(expired).toHaveBeenCalledTimes(1)
    const printed = inspect(error, { showHidden: true, depth: 30 })
    expect(printed).not.toContain('rt-SECRET')
    const again = await caught(api.get('/me'))
    expect(isSessionExpiredError(again)).toBe(true)
    expect(seen.filter((url) => url === '/oauth/token')).toHaveLength(1)
  })
})

describe('the call-wide timeout leaves nothing behind', () => {
  it('no timer is left pending after a call with a timeout settles, and a huge timeout is not 1 ms', async () => {
    vi.useFakeTimers()
    try {
      const server = fakeServer()
      const engine = createEngine({
        tokens: newTokensForTimers(),
        refresh: async () => newTokensForTimers(),
      })
      const api = axios.create({ baseURL: API, adapter: server.adapter, timeout: 30_000 })
      attachReauth(api, engine)
      for (let i = 0; i < 20; i++) expect((await api.get('/me')).status).toBe(200)
      expect(vi.getTimerCount()).toBe(0)
      const huge = axios.create({ baseURL: API, adapter: server.adapter, timeout: 2 ** 31 })
      attachReauth(huge, engine)
      expect((await huge.get('/me')).status).toBe(200)
    } finally {
      vi.useRealTimers()
    }
  })
})

function newTokensForTimers(): TokenSet {
  return { accessToken: 'new', tokenType: 'Bearer', refreshToken: 'r1' }
}
