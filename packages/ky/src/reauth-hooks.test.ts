import { inspect } from 'node:util'
import {
  createEngine,
  type Engine,
  type EngineOptions,
  generateDpopKeyPair,
  isRefreshError,
  isSessionExpiredError,
  OAuthError,
  parseTokenResponse,
  RefreshError,
  type TokenSet,
} from '@reauth/core'
import ky1, { isHTTPError as isHTTPError1, isTimeoutError as isTimeoutError1 } from 'ky'
// ky 2 is installed in test/ as the npm alias `ky2` (packages/ky's devDependency is ky 1).
import ky2, { isHTTPError as isHTTPError2, isTimeoutError as isTimeoutError2 } from 'ky2'
import { describe, expect, it, vi } from 'vitest'
import { deferred } from '../../../test/support/deferred.js'
import { reauthHooks, withReauth } from './index.js'

const API = 'https://api.example.test'
const OTHER = 'https://other.example.test'

/** Both majors behind one loose signature (their option types differ). */
type LooseResponse = Promise<Response> & { json<T = unknown>(): Promise<T> }
type LooseKy = ((
  input: string | URL | Request,
  options?: Record<string, unknown>,
) => LooseResponse) & {
  create(options?: Record<string, unknown>): LooseKy
  extend(options: Record<string, unknown>): LooseKy
  post(input: string, options?: Record<string, unknown>): LooseResponse
}

interface Major {
  name: string
  ky: LooseKy
  /** The option that sets the instance's API location. */
  prefix: (origin: string) => Record<string, unknown>
  isHTTPError: (error: unknown) => boolean
  isTimeoutError: (error: unknown) => boolean
}

const majors: Major[] = [
  {
    name: 'ky 1',
    ky: ky1 as unknown as LooseKy,
    prefix: (origin) => ({ prefixUrl: origin }),
    isHTTPError: isHTTPError1,
    isTimeoutError: isTimeoutError1,
  },
  {
    name: 'ky 2',
    ky: ky2 as unknown as LooseKy,
    prefix: (origin) => ({ prefix: origin }),
    isHTTPError: isHTTPError2,
    isTimeoutError: isTimeoutError2,
  },
]

interface Sent {
  url: string
  method: string
  authorization: string | null
  contentType: string | null
  bytes: Uint8Array
}

type Reply = number | ((request: Request) => Response | Promise<Response>)

/**
 * A fake server as ky's `fetch`: records every request; answers 401 to the expired token,
 * else the next queued reply for the path (a status or a function), else 200.
 */
function fakeServer(expired = 'Bearer old') {
  const sent: Sent[] = []
  const queues = new Map<string, Reply[]>()
  const fetch = async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = input instanceof Request ? input : new Request(input, init)
    const bytes = new Uint8Array(await request.clone().arrayBuffer())
    const authorization = request.headers.get('authorization')
    sent.push({
      url: request.url,
      method: request.method,
      authorization,
      contentType: request.headers.get('content-type'),
      bytes,
    })
    const path = new URL(request.url).pathname
    const reply = queues.get(path)?.shift()
    if (typeof reply === 'function') return reply(request)
    if (typeof reply === 'number') return new Response(`status ${reply}`, { status: reply })
    if (authorization === expired) {
      return new Response('{"error":"invalid_token"}', {
        status: 401,
        headers: { 'www-authenticate': 'Bearer error="invalid_token"' },
      })
    }
    return Response.json({ ok: true, path })
  }
  return {
    sent,
    fetch,
    /** Queue replies for a path, used before the default behaviour. */
    reply(path: string, ...replies: Reply[]) {
      queues.set(path, [...(queues.get(path) ?? []), ...replies])
    },
    to: (path: string) => sent.filter((s) => new URL(s.url).pathname === path),
  }
}

const oldTokens: TokenSet = { accessToken: 'old', tokenType: 'Bearer', refreshToken: 'r0' }
const newTokens: TokenSet = { accessToken: 'new', tokenType: 'Bearer', refreshToken: 'r1' }

function engineWith(options: Partial<EngineOptions> = {}) {
  const refresh = vi.fn(async () => newTokens)
  const warnings: string[] = []
  const engine = createEngine({
    tokens: oldTokens,
    refresh,
    logger: { warn: (message) => warnings.push(message) },
    ...options,
  })
  return { engine, refresh, warnings }
}

/** How a call ended, once it has: `'ok'` or what it threw. */
function outcome(call: Promise<unknown>): { settled: unknown } {
  const seen: { settled: unknown } = { settled: undefined }
  call.then(
    () => {
      seen.settled = 'ok'
    },
    (error: unknown) => {
      seen.settled = error
    },
  )
  return seen
}

/** An engine whose refresh waits for `gate`. */
function gatedEngine() {
  const gate = deferred()
  const { engine } = engineWith({
    refresh: async () => {
      await gate.promise
      return newTokens
    },
  })
  return { gate, engine }
}

describe.each(majors)('$name', (major) => {
  function api(engine: Engine, server: ReturnType<typeof fakeServer>, defaults = {}) {
    return withReauth(
      major.ky.create({ ...major.prefix(API), fetch: server.fetch, ...defaults }),
      engine,
    )
  }

  describe('attach', () => {
    it('sends the token to the prefix origin only, and leaves a caller’s Authorization alone', async () => {
      const server = fakeServer()
      const { engine } = engineWith({ tokens: newTokens })
      const client = api(engine, server)
      await client('me')
      // a URL input skips the prefix
      await client(new URL(`${OTHER}/public`))
      await client('me', { headers: { authorization: 'Basic dXNlcg==' } })
      expect(server.sent.map((s) => s.authorization)).toEqual([
        'Bearer new',
        null,
        'Basic dXNlcg==',
      ])
    })

    it('context: { reauth: false } sends the request untouched, and a 401 goes back as usual', async () => {
      const server = fakeServer()
      const { engine, refresh } = engineWith()
      const client = api(engine, server)
      server.reply('/me', 401)
      const error = await client('me', { context: { reauth: false } }).catch((e: unknown) => e)
      expect(major.isHTTPError(error)).toBe(true)
      expect(server.sent[0]?.authorization).toBeNull()
      expect(refresh).not.toHaveBeenCalled()
    })

    it('keeps the caller’s own context for other hooks', async () => {
      const server = fakeServer()
      const { engine } = engineWith({ tokens: newTokens })
      const seen: unknown[] = []
      const hook = (...args: unknown[]) => {
        const first = args[0] as { options?: { context?: unknown } }
        const options = (args.length > 1 ? args[1] : first.options) as { context?: unknown }
        seen.push((options.context as { traceId?: string }).traceId)
      }
      const client = api(engine, server, { hooks: { beforeRequest: [hook] } })
      await client('me', { context: { traceId: 't-1' }, signal: new AbortController().signal })
      expect(seen).toEqual(['t-1'])
    })

    it('a signed-out engine sends requests untouched', async () => {
      const server = fakeServer()
      const engine = createEngine({ refresh: async () => newTokens })
      await api(engine, server)('me')
      expect(server.sent[0]?.authorization).toBeNull()
    })
  })

  describe('replay', () => {
    it('concurrent 401s make one refresh; each request is replayed once with the new token', async () => {
      const server = fakeServer()
      const gate = deferred()
      const { engine, refresh } = engineWith({
        refresh: vi.fn(async () => {
          await gate.promise
          return newTokens
        }),
      })
      const client = api(engine, server)
      const results = Array.from({ length: 5 }, (_, i) => client(`item/${i}`).json())
      await vi.waitFor(() => expect(engine.stats().joins).toBe(4))
      gate.resolve()
      expect(await Promise.all(results)).toHaveLength(5)
      expect(engine.stats().grants).toBe(1)
      expect(engine.stats().replays).toBe(5)
      expect(server.sent.filter((s) => s.authorization === 'Bearer new')).toHaveLength(5)
      expect(refresh).toBeDefined()
    })

    it('a replay that still fails auth throws ky’s HTTPError; no loop', async () => {
      const server = fakeServer()
      const { engine } = engineWith()
      const client = api(engine, server)
      server.reply('/me', 401, 401)
      const error = await client('me').catch((e: unknown) => e)
      expect(major.isHTTPError(error)).toBe(true)
      expect((error as { response: Response }).response.status).toBe(401)
      expect(server.to('/me')).toHaveLength(2)
      expect(engine.stats().grants).toBe(1)
    })

    it('with throwHttpErrors: false the replay’s 401 Response is returned', async () => {
      const server = fakeServer()
      const { engine } = engineWith()
      server.reply('/me', 401, 401)
      const response = await api(engine, server)('me', { throwHttpErrors: false })
      expect(response.status).toBe(401)
      expect(server.to('/me').map((s) => s.authorization)).toEqual(['Bearer old', 'Bearer new'])
    })

    it('a request that is not ours (caller’s Authorization) is not refreshed on 401', async () => {
      const server = fakeServer()
      const { engine, refresh } = engineWith()
      server.reply('/me', 401)
      const response = await api(engine, server)('me', {
        headers: { authorization: 'Bearer mine' },
        throwHttpErrors: false,
      })
      expect(response.status).toBe(401)
      expect(refresh).not.toHaveBeenCalled()
    })

    it('a 403 is not a refresh trigger', async () => {
      const server = fakeServer()
      const { engine, refresh } = engineWith()
      server.reply('/me', 403)
      const response = await api(engine, server)('me', { throwHttpErrors: false })
      expect(response.status).toBe(403)
      expect(refresh).not.toHaveBeenCalled()
    })

    it('a stale 401 (token already replaced) retries with the current token, no grant', async () => {
      const server = fakeServer()
      const { engine, refresh } = engineWith()
      const sent = deferred<Response>()
      const reached = deferred()
      server.reply('/late', () => {
        reached.resolve()
        return sent.promise
      })
      const client = api(engine, server)
      const late = client('late').json()
      await reached.promise
      await engine.setTokens(newTokens)
      sent.resolve(new Response('{"error":"invalid_token"}', { status: 401 }))
      expect(await late).toEqual({ ok: true, path: '/late' })
      expect(refresh).not.toHaveBeenCalled()
      expect(engine.stats().staleRetries).toBe(1)
    })

    it('a terminal refresh failure rejects with SessionExpiredError at once (ky does not retry it)', async () => {
      const server = fakeServer()
      const { engine } = engineWith({
        refresh: async () => {
          throw new OAuthError({ error: 'invalid_grant', status: 400 })
        },
      })
      const client = api(engine, server, { retry: { limit: 2, delay: () => 60_000 } })
      await expect(client('me')).rejects.toSatisfy(isSessionExpiredError)
      await expect(client('me')).rejects.toSatisfy(isSessionExpiredError)
      expect(server.sent).toHaveLength(1)
    })

    it('a transient refresh failure rejects with RefreshError and makes no second grant', async () => {
      const server = fakeServer()
      const refresh = vi.fn(async (): Promise<TokenSet> => {
        throw new RefreshError('token endpoint down', { retryable: true, status: 503 })
      })
      const { engine } = engineWith({ refresh })
      const client = api(engine, server, { retry: { limit: 2, delay: () => 60_000 } })
      await expect(client('me')).rejects.toSatisfy(isRefreshError)
      expect(refresh).toHaveBeenCalledTimes(1)
      expect(server.sent).toHaveLength(1)
    })
  })

  describe('ky’s retry', () => {
    it('a parked call’s retry after its replay goes with the current token, not the one it was parked for', async () => {
      const server = fakeServer('Bearer mid')
      let grants = 0
      const engine = createEngine({
        tokens: { ...oldTokens, expiresAt: Date.now() + 1_000 },
        refresh: async () =>
          ++grants === 1
            ? { ...oldTokens, accessToken: 'mid', expiresAt: Date.now() + 3_600_000 }
            : { ...newTokens, expiresAt: Date.now() + 3_600_000 },
      })
      // The first send (mid) gets its 401 from the server; the replay (new) a 503.
      server.reply('/me', 401, 503)
      const body = await api(engine, server)('me', { retry: { limit: 1, delay: () => 0 } }).json()
      expect(body).toEqual({ ok: true, path: '/me' })
      expect(server.to('/me').map((s) => s.authorization)).toEqual([
        'Bearer mid',
        'Bearer new',
        'Bearer new',
      ])
    })

    it('a replay answered 503 is retried by ky within its own budget, with the new token', async () => {
      const server = fakeServer()
      const { engine } = engineWith()
      server.reply('/me', 401, 503)
      const body = await api(engine, server)('me', { retry: { limit: 1, delay: () => 0 } }).json()
      expect(body).toEqual({ ok: true, path: '/me' })
      expect(server.to('/me').map((s) => s.authorization)).toEqual([
        'Bearer old',
        'Bearer new',
        'Bearer new',
      ])
      expect(engine.stats().grants).toBe(1)
    })

    it('the replay does not double ky’s budget: 401, 503, 503 with limit 1 → HTTPError 503 after 3 sends', async () => {
      const server = fakeServer()
      const { engine } = engineWith()
      server.reply('/me', 401, 503, 503)
      const error = await api(engine, server)('me', { retry: { limit: 1, delay: () => 0 } }).catch(
        (e: unknown) => e,
      )
      expect(major.isHTTPError(error)).toBe(true)
      expect((error as { response: Response }).response.status).toBe(503)
      expect(server.to('/me')).toHaveLength(3)
    })

    it('the replay does not eat ky’s budget: with retry limit 0 a 401 is still replayed', async () => {
      const server = fakeServer()
      const { engine } = engineWith()
      const body = await api(engine, server)('me', { retry: 0 }).json()
      expect(body).toEqual({ ok: true, path: '/me' })
      expect(server.to('/me')).toHaveLength(2)
    })

    it('a 503 first, then a 401 on ky’s retry → refreshed and replayed', async () => {
      const server = fakeServer()
      const { engine } = engineWith()
      server.reply('/me', 503)
      const body = await api(engine, server)('me', { retry: { limit: 1, delay: () => 0 } }).json()
      expect(body).toEqual({ ok: true, path: '/me' })
      expect(server.to('/me').map((s) => s.authorization)).toEqual([
        'Bearer old',
        'Bearer old',
        'Bearer new',
      ])
    })
  })

  it('a replay that outlasts ky’s timeout rejects with ky’s TimeoutError', async () => {
    const server = fakeServer()
    const { engine } = engineWith()
    server.reply(
      '/slow',
      401,
      (request) =>
        new Promise<Response>((_, reject) => {
          request.signal.addEventListener('abort', () => reject(request.signal.reason))
        }),
    )
    const error = await api(engine, server)('slow', { timeout: 50, retry: 0 }).catch(
      (e: unknown) => e,
    )
    expect(major.isTimeoutError(error)).toBe(true)
  })

  describe('abort', () => {
    it('abort while waiting on the refresh rejects that request at once with an AbortError; others go on', async () => {
      const server = fakeServer()
      const { gate, engine } = gatedEngine()
      const client = api(engine, server)
      const controller = new AbortController()
      const aborted = client('a', { signal: controller.signal }).catch((e: unknown) => e)
      const other = client('b').json()
      await vi.waitFor(() => expect(engine.stats().joins).toBe(1))
      controller.abort()
      const error = await aborted
      expect(error).toBeInstanceOf(DOMException)
      expect((error as DOMException).name).toBe('AbortError')
      gate.resolve()
      expect(await other).toEqual({ ok: true, path: '/b' })
      expect(server.to('/a')).toHaveLength(1)
    })
  })

  describe('bodies are replayed byte-identical', () => {
    const form = new FormData()
    form.set('name', 'reauth')
    form.set('file', new Blob(['hello, file'], { type: 'text/plain' }), 'hello.txt')
    it.each([
      { kind: 'json', options: { json: { a: 1, text: 'ünïcode ✓' } } },
      { kind: 'URLSearchParams', options: { body: new URLSearchParams({ a: '1', b: 'two' }) } },
      { kind: 'FormData', options: { body: form } },
      { kind: 'text, retry 0', options: { body: 'plain text', retry: 0 } },
    ])('$kind', async ({ options }) => {
      const server = fakeServer()
      const { engine } = engineWith()
      const response = await api(engine, server).post('echo', {
        searchParams: { q: 'x y' },
        ...options,
      })
      expect(response.status).toBe(200)
      const [first, replay] = server.sent as [Sent, Sent]
      expect(server.sent).toHaveLength(2)
      expect(replay.authorization).toBe('Bearer new')
      expect(replay.url).toBe(first.url)
      expect(new URL(replay.url).searchParams.get('q')).toBe('x y')
      expect(replay.method).toBe('POST')
      expect(replay.contentType).toBe(first.contentType)
      expect(replay.bytes.byteLength).toBeGreaterThan(0)
      expect(Buffer.from(replay.bytes).equals(Buffer.from(first.bytes))).toBe(true)
    })

    it('a ReadableStream body is not replayed: the caller gets the 401 and the reason is logged', async () => {
      const server = fakeServer()
      const { engine, refresh, warnings } = engineWith()
      const body = new ReadableStream({
        start(controller) {
          controller.enqueue(new TextEncoder().encode('streamed'))
          controller.close()
        },
      })
      const response = await api(engine, server).post('upload', {
        body,
        throwHttpErrors: false,
        retry: 0,
      })
      expect(response.status).toBe(401)
      expect(refresh).not.toHaveBeenCalled()
      expect(warnings).toEqual([
        expect.stringContaining(`Not replaying POST ${API}/upload: its body is a ReadableStream`),
      ])
      expect(engine.stats().unreplayable).toBe(1)
    })
  })

  describe('a refresh function using the same instance', () => {
    it('is not blocked on itself: its request (with the refresh signal) goes untouched', async () => {
      const server = fakeServer()
      let client: LooseKy | undefined
      const engine = createEngine({
        tokens: { ...oldTokens, expiresAt: Date.now() + 1_000 },
        refreshTimeout: 2_000,
        refresh: async ({ signal }) => {
          const grant = await client!.post('oauth/token', { signal }).json<{ token: string }>()
          expect(grant).toEqual({ ok: true, path: '/oauth/token' })
          return { ...newTokens, expiresAt: Date.now() + 3_600_000 }
        },
      })
      client = api(engine, server) as unknown as LooseKy
      await client('me')
      expect(server.sent.map((s) => [new URL(s.url).pathname, s.authorization])).toEqual([
        ['/oauth/token', null],
        ['/me', 'Bearer new'],
      ])
      expect(engine.stats().failures).toBe(0)
    })
  })

  describe('reauthHooks', () => {
    it('works with ky.create({ hooks }), and two instances share one engine and one grant', async () => {
      const server = fakeServer()
      const { gate, engine } = gatedEngine()
      const a = major.ky.create({
        ...major.prefix(API),
        fetch: server.fetch,
        hooks: reauthHooks(major.ky, engine, { origins: [API] }),
      })
      const b = withReauth(major.ky.create({ fetch: server.fetch }), engine, { origins: [API] })
      const results = [a('one').json(), b(`${API}/two`).json()]
      await vi.waitFor(() => expect(engine.stats().joins).toBe(1))
      gate.resolve()
      expect(await Promise.all(results)).toEqual([
        { ok: true, path: '/one' },
        { ok: true, path: '/two' },
      ])
      expect(engine.stats().grants).toBe(1)
    })

    it('without origins or an engine policy, reauthHooks throws naming "origins" (hooks never trust a call’s prefix)', () => {
      const { engine } = engineWith()
      expect(() => reauthHooks(major.ky, engine)).toThrow(/"origins" is required/)
      expect(() => reauthHooks(major.ky, engine)).toThrow(
        expect.objectContaining({ code: 'INVALID_OPTION' }),
      )
    })

    it('a call with its own prefix on another origin gets no token (reauthHooks and withReauth)', async () => {
      const server = fakeServer()
      const { engine } = engineWith({ tokens: newTokens })
      const hooked = major.ky.create({
        ...major.prefix(API),
        fetch: server.fetch,
        hooks: reauthHooks(major.ky, engine, { origins: [API] }),
      })
      const wrapped = withReauth(
        major.ky.create({ ...major.prefix(API), fetch: server.fetch }),
        engine,
      )
      for (const client of [hooked, wrapped]) {
        await client('me')
        await client('steal', major.prefix(OTHER))
      }
      expect(server.sent.map((s) => [new URL(s.url).origin, s.authorization])).toEqual([
        [API, 'Bearer new'],
        [OTHER, null],
        [API, 'Bearer new'],
        [OTHER, null],
      ])
    })
  })

  describe('origins', () => {
    it('the engine’s origins win over the prefix', async () => {
      const server = fakeServer()
      const { engine } = engineWith({ tokens: newTokens, origins: [OTHER] })
      const client = api(engine, server)
      await client('me')
      await client(new URL(`${OTHER}/x`))
      expect(server.sent.map((s) => s.authorization)).toEqual([null, 'Bearer new'])
    })

    it('the adapter’s origins win over the engine’s', async () => {
      const server = fakeServer()
      const { engine } = engineWith({ tokens: newTokens, origins: [OTHER] })
      const client = withReauth(major.ky.create({ fetch: server.fetch }), engine, {
        origins: [API],
      })
      await client(`${API}/me`)
      await client(`${OTHER}/x`)
      expect(server.sent.map((s) => s.authorization)).toEqual(['Bearer new', null])
    })

    it('withReauth requires "origins" when neither the engine nor the instance names one', () => {
      const { engine } = engineWith()
      expect(() => withReauth(major.ky.create({}), engine)).toThrow(/"origins" is required/)
    })
  })

  describe('withReauth sees each response in ky’s fetch', () => {
    /** A 401 whose body stream records what happened to it. */
    function trackedUnauthorized() {
      const seen = { cancelled: false, readToEnd: false }
      let pulls = 0
      // Several chunks: a stream (or a tee of it) pulls one ahead, not to the end, unless read.
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (++pulls < 4) return controller.enqueue(new TextEncoder().encode(`chunk ${pulls}`))
          seen.readToEnd = true
          controller.close()
        },
        cancel() {
          seen.cancelled = true
        },
      })
      const response = new Response(body, {
        status: 401,
        headers: { 'www-authenticate': 'Bearer error="invalid_token"' },
      })
      return { seen, response }
    }

    /** `/me` answers that 401 once; the refresh waits for `gate`. */
    function heldRefreshAfter401() {
      const server = fakeServer()
      const { gate, engine } = gatedEngine()
      const unauthorized = trackedUnauthorized()
      server.reply('/me', () => unauthorized.response)
      return { server, gate, engine, unauthorized }
    }

    it('ky clones no response, and the 401’s body is released before the wait on the refresh', async () => {
      const { server, gate, engine, unauthorized } = heldRefreshAfter401()
      const clone = vi.spyOn(Response.prototype, 'clone')
      try {
        const pending = api(engine, server)('me').json()
        await vi.waitFor(() => expect(engine.stats().grants).toBe(1))
        expect(unauthorized.seen.cancelled).toBe(true)
        gate.resolve()
        expect(await pending).toEqual({ ok: true, path: '/me' })
        expect(clone).not.toHaveBeenCalled()
      } finally {
        clone.mockRestore()
      }
    })

    it('the instance’s own afterResponse hooks see only the replay’s response', async () => {
      const server = fakeServer()
      const { engine } = engineWith()
      const statuses: number[] = []
      const hook = (...args: unknown[]) => {
        const response = (
          args.length > 1 ? args[2] : (args[0] as { response: Response }).response
        ) as Response
        statuses.push(response.status)
      }
      const client = api(engine, server, { hooks: { afterResponse: [hook] } })
      expect(await client('me').json()).toEqual({ ok: true, path: '/me' })
      expect(statuses).toEqual([200])
      expect(server.to('/me').map((s) => s.authorization)).toEqual(['Bearer old', 'Bearer new'])
    })

    it('a call’s own fetch and an extend’s fetch keep reauth', async () => {
      const server = fakeServer()
      const other = fakeServer()
      const { engine } = engineWith()
      const client = api(engine, server)
      expect(await client('me', { fetch: other.fetch }).json()).toEqual({ ok: true, path: '/me' })
      expect(other.to('/me').map((s) => s.authorization)).toEqual(['Bearer old', 'Bearer new'])
      // The extend's fetch answers 401 once to the current token: refreshed, replayed.
      const third = fakeServer()
      third.reply('/me', 401)
      const child = client.extend({ fetch: third.fetch })
      expect(await child('me').json()).toEqual({ ok: true, path: '/me' })
      expect(third.to('/me')).toHaveLength(2)
      expect(engine.stats().grants).toBe(2)
    })

    it('a DPoP nonce retry, then a refresh: a body is resent from the spare copy each time', async () => {
      const server = fakeServer('DPoP old')
      const dpopKey = await generateDpopKeyPair()
      const { engine } = engineWith({ tokens: { ...oldTokens, tokenType: 'DPoP', dpopKey } })
      const nonce = () =>
        new Response('', {
          status: 401,
          headers: {
            'www-authenticate': 'DPoP error="use_dpop_nonce"',
            'dpop-nonce': 'n-1',
          },
        })
      server.reply('/items', nonce)
      // As a real fetch does, the send consumes the request's body.
      const consuming = async (input: RequestInfo | URL, init?: RequestInit) => {
        const response = await server.fetch(input, init)
        if (input instanceof Request) await input.arrayBuffer()
        return response
      }
      const client = api(engine, server, { fetch: consuming })
      const body = await client.post('items', { json: { a: 1 } }).json()
      expect(body).toEqual({ ok: true, path: '/items' })
      const sent = server.to('/items')
      // The refresh returns Bearer tokens (newTokens).
      expect(sent.map((s) => s.authorization)).toEqual(['DPoP old', 'DPoP old', 'Bearer new'])
      expect(sent.map((s) => new TextDecoder().decode(s.bytes))).toEqual([
        '{"a":1}',
        '{"a":1}',
        '{"a":1}',
      ])
      expect(engine.stats().grants).toBe(1)
    })

    it('a request a later hook swapped for its own is still refreshed and replayed', async () => {
      const server = fakeServer()
      const { engine } = engineWith()
      const swap = (...args: unknown[]) => {
        const request =
          args[0] instanceof Request ? args[0] : (args[0] as { request: Request }).request
        return new Request(request, {
          headers: { ...Object.fromEntries(request.headers), 'x-signed': '1' },
        })
      }
      const child = api(engine, server).extend({ hooks: { beforeRequest: [swap] } })
      expect(await child('me').json()).toEqual({ ok: true, path: '/me' })
      expect(server.to('/me').map((s) => s.authorization)).toEqual(['Bearer old', 'Bearer new'])
    })

    it('a call’s fetch: undefined (ky’s global fetch) keeps reauth', async () => {
      const server = fakeServer()
      const { engine } = engineWith()
      vi.stubGlobal('fetch', server.fetch)
      try {
        const body = await api(engine, fakeServer())('me', { fetch: undefined }).json()
        expect(body).toEqual({ ok: true, path: '/me' })
        expect(server.to('/me').map((s) => s.authorization)).toEqual(['Bearer old', 'Bearer new'])
      } finally {
        vi.unstubAllGlobals()
      }
    })

    it('two withReauth over one instance, two engines: each recovers its own 401s', async () => {
      const server = fakeServer()
      const a = engineWith()
      const b = engineWith({ tokens: { ...oldTokens, accessToken: 'old' } })
      const inner = api(a.engine, server)
      const outer = withReauth(inner, b.engine, { origins: [OTHER] })
      expect(await outer(new URL(`${OTHER}/x`)).json()).toEqual({ ok: true, path: '/x' })
      expect(b.engine.stats().grants).toBe(1)
      expect(a.engine.stats().grants).toBe(0)
    })

    it('reauthHooks read the 401’s body to its end before the wait (ky keeps its own copy)', async () => {
      const { server, gate, engine, unauthorized } = heldRefreshAfter401()
      const client = major.ky.create({
        ...major.prefix(API),
        fetch: server.fetch,
        hooks: reauthHooks(major.ky, engine, { origins: [API] }),
      })
      const pending = client('me').json()
      await vi.waitFor(() => expect(engine.stats().grants).toBe(1))
      await vi.waitFor(() => expect(unauthorized.seen.readToEnd).toBe(true))
      expect(unauthorized.seen.cancelled).toBe(false)
      gate.resolve()
      expect(await pending).toEqual({ ok: true, path: '/me' })
    })
  })

  it('extend keeps reauth on the new instance', async () => {
    const server = fakeServer()
    const { engine } = engineWith()
    const child = api(engine, server).extend({ headers: { 'x-child': '1' } })
    expect(await child('me').json()).toEqual({ ok: true, path: '/me' })
    expect(server.sent.map((s) => s.authorization)).toEqual(['Bearer old', 'Bearer new'])
  })
})

describe('validation', () => {
  it('rejects a missing engine or something that is not ky', () => {
    const { engine } = engineWith()
    expect(() => withReauth(ky1, {} as Engine)).toThrow(/"engine" must be an engine/)
    expect(() => reauthHooks({} as typeof ky1, engine)).toThrow(/"ky" must be ky/)
    expect(() => withReauth(ky1, engine, { origins: 'https://x' as never })).toThrow(/"origins"/)
  })

  it('ky 2: reauthHooks alone recognise the refresh function’s signal (its init hook keeps it)', async () => {
    const server = fakeServer()
    let client: LooseKy | undefined
    const engine = createEngine({
      tokens: { ...oldTokens, expiresAt: Date.now() + 1_000 },
      refreshTimeout: 2_000,
      refresh: async ({ signal }) => {
        await client!.post('oauth/token', { signal })
        return { ...newTokens, expiresAt: Date.now() + 3_600_000 }
      },
    })
    client = ky2.create({
      prefix: API,
      fetch: server.fetch,
      hooks: reauthHooks(ky2, engine, { origins: [API] }),
    }) as unknown as LooseKy
    await client('me')
    expect(server.sent.map((s) => s.authorization)).toEqual([null, 'Bearer new'])
  })

  it('ky 2 prefix and baseUrl both give the default origin', async () => {
    const server = fakeServer()
    const { engine } = engineWith({ tokens: newTokens })
    const base = withReauth(ky2.create({ baseUrl: `${API}/v1/`, fetch: server.fetch }), engine)
    await base('me')
    await base(`${OTHER}/x`)
    expect(server.sent.map((s) => [s.url, s.authorization])).toEqual([
      [`${API}/v1/me`, 'Bearer new'],
      [`${OTHER}/x`, null],
    ])
  })

  it('ky 2: a call with onUploadProgress (sent in a Request of ky’s own) is still replayed once', async () => {
    const server = fakeServer()
    const { engine } = engineWith()
    const progress = vi.fn()
    const client = withReauth(ky2.create({ prefix: API, fetch: server.fetch }), engine)
    const body = await client.post('upload', { body: 'payload', onUploadProgress: progress }).json()
    expect(body).toEqual({ ok: true, path: '/upload' })
    expect(
      server.to('/upload').map((s) => [s.authorization, new TextDecoder().decode(s.bytes)]),
    ).toEqual([
      ['Bearer old', 'payload'],
      ['Bearer new', 'payload'],
    ])
    expect(engine.stats().grants).toBe(1)
    expect(progress).toHaveBeenCalled()
  })
})

describe.each(majors)(
  '$name: a refresh function that posts through the same instance, on invalid_grant',
  (major) => {
    it('ends the session (SessionExpiredError, sessionExpired once), no second grant, no token in the error', async () => {
      const server = fakeServer()
      server.reply('/oauth/token', () =>
        Response.json({ error: 'invalid_grant', error_description: 'revoked' }, { status: 400 }),
      )
      let api: LooseKy | undefined
      const engine = createEngine({
        tokens: { accessToken: 'old', tokenType: 'Bearer', refreshToken: 'rt-SECRET' },
        refresh: async ({ tokens, signal, startedAt }) => {
          const body = new URLSearchParams({
            grant_type: 'refresh_token',
            refresh_token: tokens.refreshToken ?? '',
          })
          const data = await api!.post('oauth/token', { body, signal }).json()
          return parseTokenResponse(data, { sentAt: startedAt })
        },
      })
      api = withReauth(
        major.ky.create({ ...major.prefix(API), fetch: server.fetch, retry: 0 }),
        engine,
      ) as unknown as LooseKy
      const expired = vi.fn()
      engine.on('sessionExpired', expired)
      const error = await api('me')
        .json()
        .catch((e: unknown) => e)
      expect(isSessionExpiredError(error)).toBe(true)
      expect(error).toMatchObject({
        error: 'invalid_grant',
        errorDescription: 'revoked',
        status: 400,
      })
      expect(expired).toHaveBeenCalledTimes(1)
      // ky's HTTPError holds the request's options.body (the refresh token): never reachable.
      expect(inspect(error, { showHidden: true, depth: 30 })).not.toContain('rt-SECRET')
      await expect(api('me').json()).rejects.toSatisfy(isSessionExpiredError)
      expect(server.to('/oauth/token')).toHaveLength(1)
    })
  },
)

describe.each(majors)('$name: the call’s timeout bounds a wait on a refresh', (major) => {
  it('before the send and after a 401, with ky’s usual TimeoutError', async () => {
    vi.useFakeTimers()
    try {
      const hung = () => new Promise<TokenSet>(() => {})
      // Before the send: the token is inside the expiry margin and the grant hangs.
      const server = fakeServer()
      const expiring = createEngine({
        tokens: { ...oldTokens, expiresAt: Date.now() + 1_000 },
        refresh: hung,
        refreshTimeout: 60_000,
      })
      const api = withReauth(
        major.ky.create({ ...major.prefix(API), fetch: server.fetch, timeout: 200, retry: 0 }),
        expiring,
      )
      const call = api('me').catch((e: unknown) => e)
      await vi.advanceTimersByTimeAsync(200)
      const error = await call
      expect(major.isTimeoutError(error)).toBe(true)
      expect(server.sent).toHaveLength(0)
      // After a 401: the wait for the grant is bounded by what is left of the same timeout.
      const other = fakeServer()
      const reactive = createEngine({ tokens: oldTokens, refresh: hung, refreshTimeout: 60_000 })
      const api2 = withReauth(
        major.ky.create({ ...major.prefix(API), fetch: other.fetch, timeout: 300, retry: 0 }),
        reactive,
      )
      const late = api2('me').catch((e: unknown) => e)
      await vi.advanceTimersByTimeAsync(300)
      expect(major.isTimeoutError(await late)).toBe(true)
      expect(other.sent).toHaveLength(1)
    } finally {
      vi.useRealTimers()
    }
  })

  it('a 401 on ky’s retry waits only for what is left of the call’s timeout', async () => {
    vi.useFakeTimers()
    try {
      const server = fakeServer()
      const engine = createEngine({
        tokens: oldTokens,
        refresh: () => new Promise<TokenSet>(() => {}),
        refreshTimeout: 60_000,
      })
      server.reply(
        '/me',
        () =>
          new Promise<Response>((resolve) =>
            setTimeout(() => resolve(new Response('busy', { status: 503 })), 900),
          ),
      )
      const client = withReauth(
        major.ky.create({
          ...major.prefix(API),
          fetch: server.fetch,
          timeout: 1_000,
          retry: { limit: 1, statusCodes: [503], delay: () => 0 },
        }),
        engine,
      )
      const call = outcome(client('me'))
      await vi.advanceTimersByTimeAsync(950)
      expect(server.to('/me')).toHaveLength(2)
      expect(call.settled).toBeUndefined()
      // The retry's 401 waits on the hung grant: 1 000 ms from the call, not from the retry.
      await vi.advanceTimersByTimeAsync(60)
      expect(major.isTimeoutError(call.settled)).toBe(true)
    } finally {
      vi.useRealTimers()
    }
  })

  it('a call that waited before its send, then got a 401, has only the rest of its timeout', async () => {
    vi.useFakeTimers()
    try {
      const server = fakeServer()
      let grants = 0
      const engine = createEngine({
        tokens: { ...oldTokens, expiresAt: Date.now() + 1_000 },
        // The first grant takes 200 ms and returns a token the server rejects; the next hangs.
        refresh: () =>
          ++grants === 1
            ? new Promise<TokenSet>((resolve) =>
                setTimeout(() => resolve({ ...oldTokens, expiresAt: Date.now() + 3_600_000 }), 200),
              )
            : new Promise<TokenSet>(() => {}),
        refreshTimeout: 60_000,
      })
      const api = withReauth(
        major.ky.create({ ...major.prefix(API), fetch: server.fetch, timeout: 300, retry: 0 }),
        engine,
      )
      const call = outcome(api('me'))
      await vi.advanceTimersByTimeAsync(200)
      expect(server.sent).toHaveLength(1)
      expect(grants).toBe(2)
      // 300 ms from the call, not from its send.
      await vi.advanceTimersByTimeAsync(100)
      expect(major.isTimeoutError(call.settled)).toBe(true)
    } finally {
      vi.useRealTimers()
    }
  })
})
