import {
  createEngine,
  type Engine,
  isReauthOptionsError,
  isSessionExpiredError,
  OAuthError,
  type TokenSet,
} from '@reauth/core'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { deferred } from '../../../test/support/deferred.js'
import { createFetch } from './create-fetch.js'

const API = 'https://api.example.test'

interface Sent {
  url: string
  method: string
  authorization: string | null
  contentType: string | null
  bytes: Uint8Array
}

/** An underlying fetch that answers 401 to `expired` and 200 to anything else, recording every request. */
function fakeServer(expired = 'Bearer old') {
  const sent: Sent[] = []
  const fetch = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input, init)
    const bytes = new Uint8Array(await request.arrayBuffer())
    const authorization = request.headers.get('authorization')
    sent.push({
      url: request.url,
      method: request.method,
      authorization,
      contentType: request.headers.get('content-type'),
      bytes,
    })
    if (authorization === expired) {
      return new Response('{"error":"invalid_token"}', {
        status: 401,
        headers: { 'www-authenticate': 'Bearer error="invalid_token"' },
      })
    }
    return new Response(JSON.stringify({ ok: true }), { status: 200 })
  })
  return { sent, fetch: fetch as unknown as typeof globalThis.fetch, calls: fetch }
}

const oldTokens: TokenSet = { accessToken: 'old', tokenType: 'Bearer', refreshToken: 'r0' }

function engineWith(logger = {}): { engine: Engine; refresh: ReturnType<typeof vi.fn> } {
  const refresh = vi.fn(async () => ({ accessToken: 'new', tokenType: 'Bearer' }) as TokenSet)
  return { engine: createEngine({ tokens: oldTokens, refresh, logger }), refresh }
}

afterEach(() => {
  vi.unstubAllGlobals()
})

describe('createFetch', () => {
  it('attaches the token to allowed origins only', async () => {
    const server = fakeServer('never')
    const { engine } = engineWith()
    const api = createFetch(engine, { fetch: server.fetch, origins: [API] })
    await api(`${API}/me`)
    await api('https://elsewhere.example.test/me')
    expect(server.sent.map((s) => s.authorization)).toEqual(['Bearer old', null])
  })

  it('leaves a request that carries its own Authorization alone, and honours reauth: false', async () => {
    const server = fakeServer()
    const { engine, refresh } = engineWith()
    const api = createFetch(engine, { fetch: server.fetch, origins: [API] })
    const own = await api(`${API}/me`, { headers: { authorization: 'Bearer old' } })
    const skipped = await api(`${API}/me`, { reauth: false })
    expect(own.status).toBe(401)
    expect(skipped.status).toBe(200)
    expect(server.sent.map((s) => s.authorization)).toEqual(['Bearer old', null])
    expect(refresh).not.toHaveBeenCalled()
  })

  it('leaves a request that carries its own DPoP proof alone (headers object, array, Headers, Request)', async () => {
    const server = fakeServer('never')
    const { engine } = engineWith()
    const api = createFetch(engine, { fetch: server.fetch, origins: [API] })
    await api(`${API}/me`, { headers: { DPoP: 'own-proof' } })
    await api(`${API}/me`, { headers: [['dpop', 'own-proof']] })
    await api(`${API}/me`, { headers: new Headers({ dpop: 'own-proof' }) })
    await api(new Request(`${API}/me`, { headers: { dpop: 'own-proof' } }))
    await api(`${API}/me`)
    expect(server.sent.map((s) => s.authorization)).toEqual([null, null, null, null, 'Bearer old'])
  })

  it.each([
    ['a JSON string', () => JSON.stringify({ a: 1, b: 'ü' })],
    ['URLSearchParams', () => new URLSearchParams({ a: '1', b: 'two words' })],
    ['a Blob', () => new Blob([new Uint8Array([0, 1, 2, 250])], { type: 'application/x-bin' })],
    ['an ArrayBuffer', () => new Uint8Array([9, 8, 7, 0, 255]).buffer],
    ['a Uint8Array', () => new Uint8Array([1, 2, 3])],
    [
      'FormData',
      () => {
        const form = new FormData()
        form.set('field', 'value')
        form.set('file', new Blob(['content']), 'a.txt')
        return form
      },
    ],
  ])('replays %s byte-identical after a refresh', async (_, body) => {
    const server = fakeServer()
    const { engine, refresh } = engineWith()
    const api = createFetch(engine, { fetch: server.fetch, origins: [API] })
    const response = await api(`${API}/upload`, { method: 'PUT', body: body() })
    expect(response.status).toBe(200)
    expect(refresh).toHaveBeenCalledTimes(1)
    const [first, replay] = server.sent as [Sent, Sent]
    expect([first.authorization, replay.authorization]).toEqual(['Bearer old', 'Bearer new'])
    expect(replay.method).toBe('PUT')
    expect(replay.contentType).toBe(first.contentType)
    expect(replay.bytes.byteLength).toBeGreaterThan(0)
    expect(Array.from(replay.bytes)).toEqual(Array.from(first.bytes))
  })

  it('replays a Request object input with its body', async () => {
    const server = fakeServer()
    const { engine } = engineWith()
    const api = createFetch(engine, { fetch: server.fetch, origins: [API] })
    const response = await api(new Request(`${API}/x`, { method: 'POST', body: 'payload' }))
    expect(response.status).toBe(200)
    expect(server.sent.map((s) => new TextDecoder().decode(s.bytes))).toEqual([
      'payload',
      'payload',
    ])
  })

  it('gives the caller the 401 for a ReadableStream body, logs why, and makes no grant', async () => {
    const server = fakeServer()
    const warn = vi.fn()
    const { engine, refresh } = engineWith({ warn })
    const api = createFetch(engine, { fetch: server.fetch, origins: [API] })
    const stream = new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('chunk'))
        controller.close()
      },
    })
    const response = await api(`${API}/upload?secret=x`, {
      method: 'POST',
      body: stream,
      duplex: 'half',
    } as RequestInit)
    expect(response.status).toBe(401)
    expect(refresh).not.toHaveBeenCalled()
    expect(server.sent).toHaveLength(1)
    expect(engine.stats().unreplayable).toBe(1)
    expect(warn).toHaveBeenCalledWith(expect.stringContaining('ReadableStream'))
    expect(warn.mock.calls[0]?.[0]).toContain(`POST ${API}/upload`)
    expect(warn.mock.calls[0]?.[0]).not.toContain('secret=x')
  })

  it('returns a second 401 to the caller without a loop', async () => {
    const server = fakeServer()
    const refresh = vi.fn(async () => oldTokens)
    const engine = createEngine({ tokens: { ...oldTokens, accessToken: 'old' }, refresh })
    const api = createFetch(engine, { fetch: server.fetch, origins: [API] })
    const response = await api(`${API}/me`)
    expect(response.status).toBe(401)
    expect(server.sent).toHaveLength(2)
    expect(refresh).toHaveBeenCalledTimes(1)
  })

  it('lets errors other than auth through untouched', async () => {
    const failure = new TypeError('fetch failed')
    const { engine } = engineWith()
    const api = createFetch(engine, {
      fetch: async () => {
        throw failure
      },
      origins: [API],
    })
    await expect(api(`${API}/me`)).rejects.toBe(failure)
    const notFound = createFetch(engine, {
      fetch: async () => new Response('nope', { status: 404 }),
      origins: [API],
    })
    expect((await notFound(`${API}/me`)).status).toBe(404)
  })

  it('uses globalThis.fetch at call time when no fetch is given', async () => {
    const server = fakeServer('never')
    const { engine } = engineWith()
    const api = createFetch(engine, { origins: [API] })
    vi.stubGlobal('fetch', server.fetch)
    await api(`${API}/me`)
    expect(server.sent).toHaveLength(1)
  })

  it('defaults to the engine origins, then to the page origin, and otherwise requires origins', async () => {
    const server = fakeServer('never')
    const engine = createEngine({ tokens: oldTokens, refresh: vi.fn(), origins: [API] })
    await createFetch(engine, { fetch: server.fetch })(`${API}/me`)
    expect(server.sent[0]?.authorization).toBe('Bearer old')

    const bare = createEngine({ tokens: oldTokens, refresh: vi.fn() })
    expect(() => createFetch(bare)).toThrow(/"origins" is required/)
    try {
      createFetch(bare)
    } catch (error) {
      expect(isReauthOptionsError(error)).toBe(true)
    }
    vi.stubGlobal('location', { origin: API })
    await createFetch(bare, { fetch: server.fetch })(`${API}/page`)
    expect(server.sent[1]?.authorization).toBe('Bearer old')
  })

  it('validates its options', () => {
    const { engine } = engineWith()
    expect(() => createFetch({} as Engine)).toThrow(/"engine"/)
    expect(() => createFetch(engine, { fetch: 'x' as never, origins: [API] })).toThrow(/"fetch"/)
    expect(() => createFetch(engine, { origins: ['not a url'] })).toThrow(/"origins"/)
  })

  it('aborts the wait on a refresh with the signal reason, as fetch does', async () => {
    const server = fakeServer()
    let release!: () => void
    const refresh = vi.fn(
      () =>
        new Promise<TokenSet>((resolve) => {
          release = () => resolve({ accessToken: 'new', tokenType: 'Bearer' })
        }),
    )
    const engine = createEngine({ tokens: oldTokens, refresh })
    const api = createFetch(engine, { fetch: server.fetch, origins: [API] })
    const controller = new AbortController()
    const aborted = api(`${API}/me`, { signal: controller.signal })
    const other = api(`${API}/me`)
    await vi.waitFor(() => expect(refresh).toHaveBeenCalled())
    controller.abort()
    await expect(aborted).rejects.toMatchObject({ name: 'AbortError' })
    release()
    expect((await other).status).toBe(200)
  })
})

describe('a refresh function that uses the wrapped fetch itself', () => {
  it('is not given a token and does not wait on its own refresh', async () => {
    const seen: Array<string | null> = []
    const underlying = (async (input: RequestInfo | URL, init?: RequestInit) => {
      const request = new Request(input, init)
      seen.push(request.headers.get('authorization'))
      if (request.url.endsWith('/token')) {
        return Response.json({ access_token: 'new', token_type: 'Bearer', expires_in: 60 })
      }
      return request.headers.get('authorization') === 'Bearer new'
        ? Response.json({ ok: true })
        : new Response(null, { status: 401 })
    }) as typeof fetch
    let api: ReturnType<typeof createFetch> | undefined
    const engine = createEngine({
      tokens: oldTokens,
      refresh: async ({ signal, startedAt }) => {
        const response = await api!(`${API}/token`, { method: 'POST', signal })
        const { parseTokenResponse } = await import('@reauth/core')
        return parseTokenResponse(await response.json(), { sentAt: startedAt })
      },
    })
    api = createFetch(engine, { fetch: underlying, origins: [API] })
    const response = await api(`${API}/me`)
    expect(response.status).toBe(200)
    expect(seen).toEqual(['Bearer old', null, 'Bearer new'])
  })
})

describe('a call that would wait for a refresh is parked before anything is built', () => {
  const expiring: TokenSet = { ...oldTokens, expiresAt: Date.now() - 1_000 }

  it('nothing is sent while the refresh runs; then each call goes once, with the new token', async () => {
    const server = fakeServer()
    const gate = deferred<TokenSet>()
    const refresh = vi.fn(() => gate.promise)
    const engine = createEngine({ tokens: expiring, refresh })
    const api = createFetch(engine, { fetch: server.fetch, origins: [API] })
    const calls = [api(`${API}/a`), api(`${API}/b`, { method: 'POST', body: 'x' })]
    await vi.waitFor(() => expect(engine.stats().joins).toBe(1))
    expect(server.calls).not.toHaveBeenCalled()
    gate.resolve({ accessToken: 'new', tokenType: 'Bearer' })
    expect((await Promise.all(calls)).map((r) => r.status)).toEqual([200, 200])
    expect(server.sent.map((s) => s.authorization)).toEqual(['Bearer new', 'Bearer new'])
    expect(refresh).toHaveBeenCalledTimes(1)
  })

  it('a refresh failure or the caller’s abort rejects a parked call, nothing sent', async () => {
    const server = fakeServer()
    const gate = deferred<TokenSet>()
    const engine = createEngine({ tokens: expiring, refresh: () => gate.promise })
    const api = createFetch(engine, { fetch: server.fetch, origins: [API] })
    const controller = new AbortController()
    const aborted = api(`${API}/a`, { signal: controller.signal }).catch((e: unknown) => e)
    const failed = api(`${API}/b`).catch((e: unknown) => e)
    controller.abort()
    expect(((await aborted) as DOMException).name).toBe('AbortError')
    gate.reject(new OAuthError({ error: 'invalid_grant', status: 400 }))
    expect(isSessionExpiredError(await failed)).toBe(true)
    expect(server.calls).not.toHaveBeenCalled()
  })
})
