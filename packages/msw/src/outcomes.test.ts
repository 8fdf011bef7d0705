import { setupServer } from 'msw/node'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createAuthServer } from './auth-server.js'
import type { TokenOutcome } from './types.js'

const auth = createAuthServer()
const server = setupServer(...auth.handlers)

beforeAll(() => server.listen({ onUnhandledRequest: 'error' }))
afterEach(() => {
  server.resetHandlers()
  auth.reset()
})
afterAll(() => server.close())

function refresh(refreshToken: string | undefined) {
  return fetch(auth.tokenEndpoint, {
    method: 'POST',
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken ?? '' }),
  })
}

describe('enqueue', () => {
  it('oauth-error: an RFC 6749 §5.2 body, 400 by default', async () => {
    const tokens = auth.signIn()
    auth.enqueue({ type: 'oauth-error', error: 'invalid_grant', description: 'session ended' })
    const response = await refresh(tokens.refreshToken)
    expect(response.status).toBe(400)
    expect(response.headers.get('cache-control')).toBe('no-store')
    expect(await response.json()).toEqual({
      error: 'invalid_grant',
      error_description: 'session ended',
    })
    // Injected, so the real token is untouched.
    expect((await refresh(tokens.refreshToken)).status).toBe(200)
    expect(auth.counters).toMatchObject({ tokenRequests: 2, failures: 1, grants: 1 })
  })

  it('oauth-error: invalid_client is 401 with a Basic challenge; status can be overridden', async () => {
    const tokens = auth.signIn()
    auth.enqueue(
      { type: 'oauth-error', error: 'invalid_client' },
      { type: 'oauth-error', error: 'temporarily_unavailable', status: 503 },
    )
    const first = await refresh(tokens.refreshToken)
    expect(first.status).toBe(401)
    expect(first.headers.get('www-authenticate')).toBe('Basic realm="reauth-test"')
    expect(await first.json()).toEqual({ error: 'invalid_client' })
    const second = await refresh(tokens.refreshToken)
    expect(second.status).toBe(503)
    expect(await second.json()).toEqual({ error: 'temporarily_unavailable' })
  })

  it('status: an HTML page with Retry-After', async () => {
    auth.enqueue({ type: 'status', status: 503, retryAfter: 7 }, { type: 'status', status: 429 })
    const first = await refresh('anything')
    expect(first.status).toBe(503)
    expect(first.headers.get('retry-after')).toBe('7')
    expect(first.headers.get('content-type')).toMatch(/^text\/html/)
    expect(await first.text()).toContain('503 Service Unavailable')
    const second = await refresh('anything')
    expect(second.status).toBe(429)
    expect(second.headers.get('retry-after')).toBeNull()
  })

  it('status: a custom body and content type', async () => {
    auth.enqueue({
      type: 'status',
      status: 502,
      body: '{"oops":1}',
      contentType: 'application/json',
    })
    const response = await refresh('anything')
    expect(response.status).toBe(502)
    expect(response.headers.get('content-type')).toBe('application/json')
    expect(await response.json()).toEqual({ oops: 1 })
  })

  it('network-error: fetch rejects', async () => {
    auth.enqueue({ type: 'network-error' })
    await expect(refresh('anything')).rejects.toThrow(TypeError)
    expect(auth.counters).toMatchObject({ tokenRequests: 1, failures: 1 })
  })

  it.each([
    { token_type: 'Bearer', expires_in: 60 },
    { access_token: 'a', token_type: 'Bearer', expires_in: -1 },
    { access_token: 'a', token_type: 'Bearer', expires_in: '3600' },
    { access_token: 'a', token_type: 'mac', expires_in: 60 },
  ])('json: serves %o as is (status 200) and counts it as a failure', async (json) => {
    auth.enqueue({ type: 'json', json })
    const response = await refresh('anything')
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toMatch(/^application\/json/)
    expect(await response.json()).toEqual(json)
    expect(auth.counters).toMatchObject({ failures: 1, grants: 0 })
  })

  it('json: with a status', async () => {
    auth.enqueue({ type: 'json', json: { message: 'nope' }, status: 500 })
    const response = await refresh('anything')
    expect(response.status).toBe(500)
    expect(await response.json()).toEqual({ message: 'nope' })
  })

  it('body: raw text, application/json by default', async () => {
    auth.enqueue(
      { type: 'body', body: '{"access_token":' },
      { type: 'body', body: 'hi', contentType: 'text/plain', status: 502 },
    )
    const first = await refresh('anything')
    expect(first.status).toBe(200)
    expect(first.headers.get('content-type')).toBe('application/json')
    await expect(first.clone().json()).rejects.toThrow(SyntaxError)
    expect(await first.text()).toBe('{"access_token":')
    const second = await refresh('anything')
    expect(second.status).toBe(502)
    expect(second.headers.get('content-type')).toBe('text/plain')
    expect(await second.text()).toBe('hi')
  })

  it('ok: overrides expires_in once', async () => {
    const tokens = auth.signIn()
    auth.enqueue({ type: 'ok', expiresIn: 2 })
    const first = (await (await refresh(tokens.refreshToken)).json()) as {
      expires_in: number
      refresh_token: string
    }
    expect(first.expires_in).toBe(2)
    const second = (await (await refresh(first.refresh_token)).json()) as { expires_in: number }
    expect(second.expires_in).toBe(60)
    expect(auth.counters).toMatchObject({ grants: 2, failures: 0 })
  })

  it('ok: rotate: false keeps the refresh token once', async () => {
    const tokens = auth.signIn()
    auth.enqueue({ type: 'ok', rotate: false })
    const first = (await (await refresh(tokens.refreshToken)).json()) as { refresh_token?: string }
    expect(first).not.toHaveProperty('refresh_token')
    const second = (await (await refresh(tokens.refreshToken)).json()) as { refresh_token?: string }
    expect(second.refresh_token).toEqual(expect.any(String))
    expect(auth.counters.reuseDetected).toBe(0)
  })

  it('ok: rotate: true rotates once on a non-rotating server', async () => {
    const fixed = createAuthServer({ issuer: 'https://fixed.test', rotateRefreshTokens: false })
    server.use(...fixed.handlers)
    const tokens = fixed.signIn()
    fixed.enqueue({ type: 'ok', rotate: true })
    const body = new URLSearchParams({
      grant_type: 'refresh_token',
      refresh_token: tokens.refreshToken!,
    })
    const first = (await (await fetch(fixed.tokenEndpoint, { method: 'POST', body })).json()) as {
      refresh_token?: string
    }
    expect(first.refresh_token).toEqual(expect.any(String))
    const reuse = await fetch(fixed.tokenEndpoint, { method: 'POST', body })
    expect(reuse.status).toBe(400)
    expect(fixed.counters.reuseDetected).toBe(1)
  })

  it('consumes one outcome per request, FIFO, then handles requests normally', async () => {
    const tokens = auth.signIn()
    auth.enqueue({ type: 'status', status: 500 })
    auth.enqueue({ type: 'status', status: 502 }, { type: 'network-error' })
    expect((await refresh(tokens.refreshToken)).status).toBe(500)
    expect((await refresh(tokens.refreshToken)).status).toBe(502)
    await expect(refresh(tokens.refreshToken)).rejects.toThrow()
    expect((await refresh(tokens.refreshToken)).status).toBe(200)
    expect(auth.counters).toMatchObject({ tokenRequests: 4, failures: 3, grants: 1 })
    expect(auth.presentedRefreshTokens).toHaveLength(4)
  })

  it.each<[unknown, RegExp]>([
    [{ type: 'status' }, /needs "status"/],
    [{ type: 'status', status: 99 }, /"status"/],
    [{ type: 'status', status: 503, retryAfter: -1 }, /"retryAfter"/],
    [{ type: 'oauth-error', error: '' }, /"error"/],
    [{ type: 'body', body: 1 }, /"body"/],
    [{ type: 'ok', expiresIn: Number.NaN }, /"expiresIn"/],
    [{ type: 'teapot' }, /unknown outcome type "teapot"/],
  ])('rejects %o when queued', (outcome, message) => {
    expect(() => auth.enqueue(outcome as TokenOutcome)).toThrow(message)
  })
})
