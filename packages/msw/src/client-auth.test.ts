import { setupServer } from 'msw/node'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createAuthServer } from './auth-server.js'

const publicServer = createAuthServer()
const confidential = createAuthServer({
  issuer: 'https://confidential.test',
  clientId: 'web app',
  clientSecret: 'p@ss:word',
})
const server = setupServer(...publicServer.handlers, ...confidential.handlers)

beforeAll(() => server.listen({ onUnhandledRequest: 'error' }))
afterEach(() => {
  publicServer.reset()
  confidential.reset()
})
afterAll(() => server.close())

/** RFC 6749 §2.3.1: form-urlencode each part, then base64. */
function basic(id: string, secret: string): string {
  const encode = (value: string) => encodeURIComponent(value).replace(/%20/g, '+')
  return `Basic ${btoa(`${encode(id)}:${encode(secret)}`)}`
}

function post(
  auth: typeof confidential,
  params: Record<string, string>,
  headers: Record<string, string> = {},
) {
  return fetch(auth.tokenEndpoint, { method: 'POST', headers, body: new URLSearchParams(params) })
}

function grant(auth: typeof confidential) {
  return { grant_type: 'refresh_token', refresh_token: auth.signIn().refreshToken! }
}

describe('client authentication', () => {
  it('accepts client_secret_basic', async () => {
    const response = await post(confidential, grant(confidential), {
      Authorization: basic('web app', 'p@ss:word'),
    })
    expect(response.status).toBe(200)
  })

  it('accepts client_secret_post', async () => {
    const response = await post(confidential, {
      ...grant(confidential),
      client_id: 'web app',
      client_secret: 'p@ss:word',
    })
    expect(response.status).toBe(200)
  })

  it.each([
    ['a wrong secret (basic)', {}, { Authorization: basic('web app', 'guess') }],
    ['a wrong secret (post)', { client_id: 'web app', client_secret: 'guess' }, {}],
    ['no credentials', {}, {}],
    ['a client_id without a secret', { client_id: 'web app' }, {}],
    ['another client', { client_id: 'other', client_secret: 'p@ss:word' }, {}],
    ['malformed Basic credentials', {}, { Authorization: 'Basic !!!' }],
  ])('answers 401 invalid_client for %s', async (_, params, headers) => {
    const response = await post(confidential, { ...grant(confidential), ...params }, headers)
    expect(response.status).toBe(401)
    expect(response.headers.get('www-authenticate')).toBe('Basic realm="reauth-test"')
    const text = await response.text()
    expect(JSON.parse(text)).toMatchObject({ error: 'invalid_client' })
    expect(text).not.toContain('p@ss')
    expect(text).not.toContain('guess')
    expect(confidential.counters).toMatchObject({ failures: 1, grants: 0 })
  })

  it('rejects two authentication methods at once', async () => {
    const response = await post(
      confidential,
      { ...grant(confidential), client_secret: 'p@ss:word' },
      { Authorization: basic('web app', 'p@ss:word') },
    )
    expect(response.status).toBe(400)
    expect(await response.json()).toMatchObject({ error: 'invalid_request' })
  })

  it('lets a public client name itself or not, but not as someone else', async () => {
    expect((await post(publicServer, grant(publicServer))).status).toBe(200)
    expect(
      (await post(publicServer, { ...grant(publicServer), client_id: 'reauth-test' })).status,
    ).toBe(200)
    const wrong = await post(publicServer, { ...grant(publicServer), client_id: 'intruder' })
    expect(wrong.status).toBe(401)
    expect(await wrong.json()).toEqual({
      error: 'invalid_client',
      error_description: 'Unknown client',
    })
    const wrongBasic = await post(publicServer, grant(publicServer), {
      Authorization: basic('intruder', 'x'),
    })
    expect(wrongBasic.status).toBe(401)
  })
})
