import { createEngine, isReauthOptionsError, isRefreshError, type RefreshError } from '@reauth/core'
import { createAuthServer } from '@reauth/msw'
import { HttpResponse, http } from 'msw'
import { setupServer } from 'msw/node'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import {
  createRefreshGrant,
  type DiscoveryError,
  discover,
  isDiscoveryError,
  MAX_DISCOVERY_REDIRECTS,
} from './index.js'

/** Answers 301 from /.well-known/openid-configuration to the same path with a trailing slash. */
const redirecting = createAuthServer({ issuer: 'https://redirecting.reauth.test' })
const insecure = createAuthServer({ issuer: 'http://insecure.reauth.test' })
const flaky = createAuthServer({ issuer: 'https://flaky.reauth.test' })
const fetched: string[] = []
let flakyFailures = 0

const server = setupServer(
  http.all('*', ({ request }) => {
    fetched.push(request.url)
  }),
  http.get(`${redirecting.issuer}/.well-known/openid-configuration*`, ({ request }) => {
    const url = new URL(request.url)
    if (!url.pathname.endsWith('/')) {
      return new HttpResponse(null, {
        status: 301,
        headers: { location: `${url.pathname}/` },
      })
    }
    return HttpResponse.json({
      issuer: redirecting.issuer,
      authorization_endpoint: redirecting.authorizationEndpoint,
      token_endpoint: redirecting.tokenEndpoint,
    })
  }),
  http.get(`${redirecting.issuer}/.well-known/oauth-authorization-server`, () =>
    HttpResponse.json({ error: 'not_found' }, { status: 404 }),
  ),
  http.get('https://loop.reauth.test/.well-known/*', ({ request }) =>
    HttpResponse.redirect(request.url, 302),
  ),
  http.get('https://downgrade.reauth.test/.well-known/*', ({ request }) =>
    HttpResponse.redirect(request.url.replace('https:', 'http:'), 301),
  ),
  http.get('https://missing.reauth.test/.well-known/*', () =>
    HttpResponse.json({ error: 'not_found' }, { status: 404 }),
  ),
  http.get('https://html.reauth.test/.well-known/*', () =>
    HttpResponse.html('<!doctype html><title>Welcome</title>'),
  ),
  http.get('https://mixup.reauth.test/.well-known/*', () =>
    HttpResponse.json({ issuer: 'https://attacker.reauth.test', token_endpoint: 'https://x/t' }),
  ),
  http.get('https://busy.reauth.test/.well-known/openid-configuration', () =>
    HttpResponse.text('busy', { status: 503 }),
  ),
  http.get('https://busy.reauth.test/.well-known/oauth-authorization-server', () =>
    HttpResponse.json({ issuer: 'https://busy.reauth.test', token_endpoint: 'https://x/t' }),
  ),
  http.get('https://down.reauth.test/.well-known/*', () => HttpResponse.error()),
  http.get('https://http-endpoint.reauth.test/.well-known/openid-configuration', () =>
    HttpResponse.json({
      issuer: 'https://http-endpoint.reauth.test',
      token_endpoint: 'http://http-endpoint.reauth.test/token',
    }),
  ),
  http.get(`${flaky.issuer}/.well-known/openid-configuration`, () => {
    if (flakyFailures > 0) {
      flakyFailures--
      return HttpResponse.text('unavailable', { status: 502 })
    }
  }),
  ...redirecting.handlers,
  ...insecure.handlers,
  ...flaky.handlers,
)
beforeAll(() => server.listen({ onUnhandledRequest: 'error' }))
afterEach(() => {
  for (const auth of [redirecting, insecure, flaky]) auth.reset()
  fetched.length = 0
  flakyFailures = 0
})
afterAll(() => server.close())

async function discoveryError(issuer: string): Promise<DiscoveryError> {
  const error = await discover(issuer).then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(isDiscoveryError(error), String(error)).toBe(true)
  return error as DiscoveryError
}

/** What the engine reports when a refresh through createRefreshGrant cannot discover. */
async function refreshError(issuer: string): Promise<RefreshError> {
  const engine = createEngine({
    tokens: { accessToken: 'a', tokenType: 'Bearer', refreshToken: 'refresh-token-value' },
    refresh: createRefreshGrant({ issuer, clientId: 'reauth-test' }),
  })
  const error = await engine.refresh().then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(isRefreshError(error), String(error)).toBe(true)
  return error as RefreshError
}

const context = (refreshToken: string) => ({
  tokens: { accessToken: 'a', tokenType: 'Bearer', refreshToken },
  signal: new AbortController().signal,
  startedAt: Date.now(),
})

describe('discover: redirects', () => {
  it('follows a 301 to the same path with a trailing slash', async () => {
    const metadata = await discover(redirecting.issuer)
    expect(metadata.token_endpoint).toBe(redirecting.tokenEndpoint)
    expect(fetched).toEqual([
      `${redirecting.issuer}/.well-known/openid-configuration`,
      `${redirecting.issuer}/.well-known/openid-configuration/`,
    ])
    // and the refresh grant works on it
    const next = await createRefreshGrant({ issuer: redirecting.issuer, clientId: 'reauth-test' })(
      context(redirecting.signIn().refreshToken as string),
    )
    expect(next.accessToken).toBeDefined()
  })

  it(`follows at most ${MAX_DISCOVERY_REDIRECTS} redirects: a loop is not retryable`, async () => {
    const error = await discoveryError('https://loop.reauth.test')
    expect(error.retryable).toBe(false)
    expect(error.message).toContain(`redirected more than ${MAX_DISCOVERY_REDIRECTS} times`)
    // two well-known URLs, each fetched once and then once per redirect followed
    expect(fetched).toHaveLength(2 * (MAX_DISCOVERY_REDIRECTS + 1))
  })

  it('does not follow a redirect from https to http', async () => {
    const error = await discoveryError('https://downgrade.reauth.test')
    expect(error.retryable).toBe(false)
    expect(error.message).toContain('"allowInsecureRequests"')
    expect(fetched.every((url) => url.startsWith('https:'))).toBe(true)
  })
})

describe('discover: what cannot succeed is not retryable', () => {
  it.each([
    ['404 on every well-known URL', 'https://missing.reauth.test', /answered HTTP 404/],
    ['an HTML page instead of metadata', 'https://html.reauth.test', /is not valid metadata/],
    ['a document for another issuer (mix-up)', 'https://mixup.reauth.test', /another issuer/],
  ])('%s', async (_what, issuer, reason) => {
    const error = await discoveryError(issuer)
    expect(error).toMatchObject({ code: 'DISCOVERY_FAILED', retryable: false })
    expect(error.message).toMatch(reason)
    expect(error.message).toContain('/.well-known/openid-configuration')
    expect(error.message).toContain('/.well-known/oauth-authorization-server')
    const failure = await refreshError(issuer)
    expect(failure.retryable).toBe(false)
    expect(failure.message).toMatch(/Discovery failed/)
  })

  it('discovered metadata with an http: token endpoint', async () => {
    const failure = await refreshError('https://http-endpoint.reauth.test')
    expect(failure.retryable).toBe(false)
    expect(failure.message).toContain('"allowInsecureRequests"')
  })
})

describe('discover: network errors and 5xx stay retryable', () => {
  it.each([
    ['503', 'https://busy.reauth.test', 503],
    ['a network error', 'https://down.reauth.test', undefined],
  ])('%s', async (_what, issuer, status) => {
    const error = await discoveryError(issuer)
    expect(error).toMatchObject({ retryable: true, status })
    // not taken for a plain OAuth 2.0 server: RFC 8414 is not asked
    expect(fetched.some((url) => url.includes('oauth-authorization-server'))).toBe(false)
    const failure = await refreshError(issuer)
    expect(failure).toMatchObject({ retryable: true, status })
  })

  it('a failed discovery is tried again on the next refresh', async () => {
    flakyFailures = 1
    const refresh = createRefreshGrant({ issuer: flaky.issuer, clientId: 'reauth-test' })
    const initial = flaky.signIn().refreshToken as string
    await expect(refresh(context(initial))).rejects.toMatchObject({ retryable: true, status: 502 })
    expect((await refresh(context(initial))).accessToken).toBeDefined()
  })
})

describe('an http: issuer', () => {
  it('without allowInsecureRequests: an options error at the factory that names the option', () => {
    let error: unknown
    try {
      createRefreshGrant({ issuer: 'http://localhost:8080/realms/dev', clientId: 'reauth-test' })
    } catch (e) {
      error = e
    }
    expect(isReauthOptionsError(error)).toBe(true)
    expect((error as Error).message).toContain('"issuer" is an http: URL (http://localhost:8080)')
    expect((error as Error).message).toContain('"allowInsecureRequests": true')
    expect((error as Error).cause).toBeUndefined()
    expect(fetched).toEqual([])
  })

  it('discover() says the same', async () => {
    await expect(discover('http://localhost:8080')).rejects.toSatisfy(
      (error: unknown) =>
        isReauthOptionsError(error) && /"allowInsecureRequests"/.test((error as Error).message),
    )
  })

  it('metadata given as "server" with an http: endpoint', () => {
    expect(() =>
      createRefreshGrant({
        clientId: 'reauth-test',
        server: { issuer: 'https://as.reauth.test', token_endpoint: 'http://as.reauth.test/t' },
      }),
    ).toThrow(/"server.token_endpoint" is an http: URL .*"allowInsecureRequests"/)
  })

  it('with allowInsecureRequests: discovery and the grant work', async () => {
    const refresh = createRefreshGrant({
      issuer: insecure.issuer,
      clientId: 'reauth-test',
      allowInsecureRequests: true,
    })
    const next = await refresh(context(insecure.signIn().refreshToken as string))
    expect(next.accessToken).toBeDefined()
    expect(insecure.counters.grants).toBe(1)
  })
})
