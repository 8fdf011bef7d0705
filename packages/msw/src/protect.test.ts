import { ReauthOptionsError } from '@reauth/core'
import { HttpResponse } from 'msw'
import { setupServer } from 'msw/node'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createAuthServer } from './auth-server.js'
import { bearerChallenge } from './bearer-challenge.js'
import type { ProtectedToken } from './types.js'

const auth = createAuthServer({ realm: 'api' })
const seen: ProtectedToken[] = []
const server = setupServer(
  auth.protect('GET', 'https://api.example.test/me'),
  auth.protect(
    'DELETE',
    'https://api.example.test/items/:id',
    ({ params, token }) => {
      seen.push(token)
      return HttpResponse.json({ deleted: params.id })
    },
    { scope: 'items:write' },
  ),
  auth.protect('all', 'https://api.example.test/any'),
)

beforeAll(() => server.listen({ onUnhandledRequest: 'error' }))
afterEach(() => {
  auth.reset()
  seen.length = 0
})
afterAll(() => server.close())

const me = (headers: Record<string, string> = {}) =>
  fetch('https://api.example.test/me', { headers })

describe('protect', () => {
  it('answers the default JSON with a valid token', async () => {
    const tokens = auth.signIn()
    const response = await me({ Authorization: `Bearer ${tokens.accessToken}` })
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({ ok: true, path: 'https://api.example.test/me' })
    expect(auth.counters.routes['GET https://api.example.test/me']).toEqual({
      hits: 1,
      unauthorized: 0,
      forbidden: 0,
    })
  })

  it('accepts the scheme in any case (RFC 7235)', async () => {
    const tokens = auth.signIn()
    expect((await me({ Authorization: `bearer ${tokens.accessToken}` })).status).toBe(200)
  })

  it('answers a request without credentials with a bare challenge (RFC 6750 §3.1)', async () => {
    const response = await me()
    expect(response.status).toBe(401)
    expect(response.headers.get('www-authenticate')).toBe('Bearer realm="api"')
    expect(await response.json()).toEqual({ message: 'Authentication required' })
  })

  it('treats another scheme as no credentials', async () => {
    const response = await me({ Authorization: 'Basic dTpw' })
    expect(response.status).toBe(401)
    expect(response.headers.get('www-authenticate')).toBe('Bearer realm="api"')
  })

  it('answers an unknown token with invalid_token, never echoing it', async () => {
    const response = await me({ Authorization: 'Bearer at_forged' })
    expect(response.status).toBe(401)
    const challenge = response.headers.get('www-authenticate')
    expect(challenge).toBe(
      'Bearer realm="api", error="invalid_token", error_description="The access token is not recognised"',
    )
    const text = await response.text()
    expect(text).not.toContain('at_forged')
    expect(JSON.parse(text)).toEqual({
      error: 'invalid_token',
      error_description: 'The access token is not recognised',
    })
  })

  it('answers "Bearer" without a token with 400 invalid_request', async () => {
    const response = await me({ Authorization: 'Bearer' })
    expect(response.status).toBe(400)
    expect(response.headers.get('www-authenticate')).toContain('error="invalid_request"')
  })

  it('answers 403 insufficient_scope when the token lacks the route scope', async () => {
    const tokens = auth.signIn({ scope: 'items:read' })
    const response = await fetch('https://api.example.test/items/7', {
      method: 'DELETE',
      headers: { Authorization: `Bearer ${tokens.accessToken}` },
    })
    expect(response.status).toBe(403)
    expect(response.headers.get('www-authenticate')).toBe(
      'Bearer realm="api", error="insufficient_scope", error_description="The access token lacks the required scope", scope="items:write"',
    )
    expect(await response.json()).toMatchObject({
      error: 'insufficient_scope',
      scope: 'items:write',
    })
    expect(seen).toEqual([])
    expect(auth.counters.routes['DELETE https://api.example.test/items/:id']).toEqual({
      hits: 1,
      unauthorized: 0,
      forbidden: 1,
    })
  })

  it('calls the resolver with msw info and the token once the scope is there', async () => {
    const tokens = auth.signIn({ scope: 'items:read items:write' })
    const response = await fetch('https://api.example.test/items/7', {
      method: 'DELETE',
      headers: { Authorization: `Bearer ${tokens.accessToken}` },
    })
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({ deleted: '7' })
    expect(seen).toEqual([
      {
        accessToken: tokens.accessToken,
        scope: 'items:read items:write',
        familyId: expect.any(String),
      },
    ])
  })

  it('counts hits, 401s and 403s per route', async () => {
    const tokens = auth.signIn({ scope: 'none' })
    await me()
    await me({ Authorization: 'Bearer nope' })
    await me({ Authorization: `Bearer ${tokens.accessToken}` })
    await fetch('https://api.example.test/items/1', {
      method: 'DELETE',
      headers: { Authorization: `Bearer ${tokens.accessToken}` },
    })
    await fetch('https://api.example.test/any', { method: 'PUT' })
    expect(auth.counters.routes).toEqual({
      'GET https://api.example.test/me': { hits: 3, unauthorized: 2, forbidden: 0 },
      'DELETE https://api.example.test/items/:id': { hits: 1, unauthorized: 0, forbidden: 1 },
      'all https://api.example.test/any': { hits: 1, unauthorized: 1, forbidden: 0 },
    })
  })

  it('validates its arguments', () => {
    expect(() => auth.protect('HEAD' as never, '/x')).toThrow(ReauthOptionsError)
    expect(() => auth.protect('GET', '')).toThrow(ReauthOptionsError)
    expect(() => auth.protect('GET', '/x', 'nope' as never)).toThrow(ReauthOptionsError)
  })
})

describe('bearerChallenge', () => {
  it('builds RFC 6750 challenges', () => {
    expect(bearerChallenge()).toBe('Bearer realm="reauth-test"')
    expect(bearerChallenge('invalid_token', 'expired', { realm: 'r' })).toBe(
      'Bearer realm="r", error="invalid_token", error_description="expired"',
    )
    expect(bearerChallenge('insufficient_scope', undefined, { scope: 'a b' })).toBe(
      'Bearer realm="reauth-test", error="insufficient_scope", scope="a b"',
    )
  })

  it('escapes quotes and backslashes', () => {
    expect(bearerChallenge(undefined, undefined, { realm: 'a"b\\c' })).toBe(
      'Bearer realm="a\\"b\\\\c"',
    )
  })
})
