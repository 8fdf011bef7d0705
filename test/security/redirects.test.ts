/**
 * Tokens reach only allowed origins, also across redirects: every adapter entry, against two
 * loopback servers on 127.0.0.1 with different ports (two origins). The API origin redirects
 * to the other origin (302 and 307) and to itself; the other origin must never see a token.
 */
import { createEngine, type Engine } from '@reauth/core'
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import { harnesses } from '../support/harness.js'
import { type Loopback, listen } from './loopback.js'

let api: Loopback
let other: Loopback

beforeAll(async () => {
  other = await listen((_, response) => {
    response.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}')
  })
  api = await listen((request, response) => {
    const url = new URL(request.url ?? '/', 'http://x')
    const to = url.searchParams.get('to')
    if (url.pathname === '/redirect' && to) {
      const status = Number(url.searchParams.get('status') ?? 302)
      response.writeHead(status, { location: to }).end()
      return
    }
    response.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}')
  })
})
afterAll(async () => {
  await Promise.all([api.close(), other.close()])
})

describe.each(harnesses)('redirects: $name', (harness) => {
  let engine: Engine
  const refresh = vi.fn()
  beforeEach(() => {
    api.hits.length = 0
    other.hits.length = 0
    engine = createEngine({
      tokens: { accessToken: 'access-secret-1', tokenType: 'Bearer', refreshToken: 'rt-1' },
      refresh,
    })
  })

  it.each([302, 307])('a %i to another origin: the token is not sent there', async (status) => {
    const client = harness.create(engine, api.origin)
    const target = `${other.origin}/landing`
    const url = `${api.origin}/redirect?status=${status}&to=${encodeURIComponent(target)}`
    const result = await client.request(url)
    expect(result.status).toBe(200)
    expect(api.hits).toEqual([
      { path: expect.stringContaining('/redirect'), authorization: 'Bearer access-secret-1' },
    ])
    expect(other.hits).toEqual([{ path: '/landing', authorization: undefined }])
    expect(refresh).not.toHaveBeenCalled()
  })

  it('a redirect within the allowed origin keeps the token', async () => {
    const client = harness.create(engine, api.origin)
    const url = `${api.origin}/redirect?to=${encodeURIComponent(`${api.origin}/final`)}`
    expect((await client.request(url)).status).toBe(200)
    expect(api.hits.map((h) => h.authorization)).toEqual([
      'Bearer access-secret-1',
      'Bearer access-secret-1',
    ])
  })
})
