/**
 * The interop checks, run once per authorization server (see dot.test.ts and
 * node-oauth2-server.test.ts). Nothing about the protocol is faked: sign-in is
 * authorization code + PKCE over HTTP, grants go to the server's token endpoint through
 * @reauth/oauth, and the protected API asks the server whether each token is active.
 */
import {
  createEngine,
  createMemoryStore,
  isOAuthError,
  isSessionEnd,
  type TokenSet,
  type TokenStore,
} from '@reauth/core'
import {
  beginSignIn,
  type ClientAuthMethod,
  completeSignIn,
  createRefreshGrant,
  discover,
  type OAuthClientOptions,
  type SignInOptions,
} from '@reauth/oauth'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fetchHarness, type Harness, harnesses, type TestClient } from '../support/harness.js'
import { type InteropApi, startInteropApi } from './api.js'
import type { InteropClient, InteropServer, ServerCounters } from './servers/types.js'

const STORM = 200

/** A store that forgets `expiresAt`: the engine cannot refresh ahead and meets real 401s. */
function storeWithoutExpiry(): TokenStore {
  const inner = createMemoryStore()
  return {
    get: inner.get,
    clear: inner.clear,
    set: (tokens) => {
      if (isSessionEnd(tokens)) return inner.set(tokens)
      const { expiresAt: _expiresAt, issuedAt: _issuedAt, ...rest } = tokens
      return inner.set(rest)
    },
  }
}

function refreshRejection(error: unknown): string {
  return isOAuthError(error) ? error.error : `not an OAuthError: ${String(error)}`
}

/** Code + PKCE sign-in at `server`, its authorization endpoint driven over HTTP. */
export async function signInAt(server: InteropServer, options: SignInOptions): Promise<TokenSet> {
  const request = await beginSignIn(options)
  const callbackUrl = await server.authorize(request.url)
  return completeSignIn(options, { callbackUrl, ...request })
}

export interface InteropSuiteOptions {
  start: () => Promise<InteropServer>
  /** The client authentication methods the server supports; the server has a client for each. */
  clientAuth: readonly ClientAuthMethod[]
}

export function interopSuite({ start, clientAuth }: InteropSuiteOptions): void {
  let server: InteropServer
  let api: InteropApi

  beforeAll(async () => {
    server = await start()
    api = await startInteropApi((token) => server.isActive(token))
  })
  afterAll(async () => {
    await api?.stop()
    await server?.stop()
  })

  function clientOptions(client: InteropClient): OAuthClientOptions {
    return {
      issuer: server.issuer,
      clientId: client.clientId,
      ...(client.clientSecret === undefined ? {} : { clientSecret: client.clientSecret }),
      clientAuth: client.clientAuth,
      ...(client.encodeBasicCredentials === undefined
        ? {}
        : { encodeBasicCredentials: client.encodeBasicCredentials }),
      // every interop server is http on 127.0.0.1
      allowInsecureRequests: true,
    }
  }

  function signInOptions(client: InteropClient): SignInOptions {
    return { ...clientOptions(client), redirectUri: server.redirectUri, ...server.signIn }
  }

  function signIn(client: InteropClient): Promise<TokenSet> {
    return signInAt(server, signInOptions(client))
  }

  async function delta(before: ServerCounters): Promise<ServerCounters> {
    const after = await server.counters()
    return {
      refreshGrants: after.refreshGrants - before.refreshGrants,
      reuse: after.reuse - before.reuse,
    }
  }

  it('discovery finds the issuer, the token and the authorization endpoints', async () => {
    const metadata = await discover(server.issuer, { allowInsecureRequests: true })
    expect(new URL(metadata.issuer).href).toBe(new URL(server.issuer).href)
    expect(metadata.token_endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+\//)
    expect(metadata.authorization_endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+\//)
  })

  describe.each(clientAuth)('client authentication %s', (method) => {
    const client = () => {
      const found = server.clients.find((c) => c.clientAuth === method)
      if (!found) throw new Error(`${server.name} has no client for ${method}`)
      return found
    }

    it('code + PKCE sign-in gives an active access token and a refresh token; a wrong verifier is refused', async () => {
      const tokens = await signIn(client())
      expect(tokens.tokenType.toLowerCase()).toBe('bearer')
      expect(typeof tokens.refreshToken).toBe('string')
      expect(typeof tokens.expiresAt).toBe('number')
      expect(typeof tokens.idToken).toBe(server.openid ? 'string' : 'undefined')
      expect(await server.isActive(tokens.accessToken)).toBe(true)

      // The server really checks the PKCE verifier: the same flow with another one fails.
      const options = signInOptions(client())
      const request = await beginSignIn(options)
      const callbackUrl = await server.authorize(request.url)
      const last = request.codeVerifier.endsWith('A') ? 'B' : 'A'
      const wrong = { ...request, codeVerifier: `${request.codeVerifier.slice(0, -1)}${last}` }
      const failure = await completeSignIn(options, { callbackUrl, ...wrong }).catch(
        (error: unknown) => error,
      )
      expect(refreshRejection(failure)).toBe('invalid_grant')
    })

    it('refresh grant rotates: new tokens each grant, the spent refresh token is refused', async () => {
      const first = await signIn(client())
      const refresh = createRefreshGrant(clientOptions(client()))
      const context = (tokens: TokenSet) => ({
        tokens,
        signal: new AbortController().signal,
        startedAt: Date.now(),
      })
      const before = await server.counters()

      const second = await refresh(context(first))
      expect(await server.isActive(second.accessToken)).toBe(true)
      const third = await refresh(context(second))
      expect(await server.isActive(third.accessToken)).toBe(true)
      expect(new Set([first.refreshToken, second.refreshToken, third.refreshToken]).size).toBe(3)
      expect(await delta(before)).toEqual({ refreshGrants: 2, reuse: 0 })

      // A spent refresh token, presented on purpose: refused, and counted as reuse.
      const replay = await refresh(context(first)).catch((error: unknown) => error)
      expect(refreshRejection(replay)).toBe('invalid_grant')
      expect(await delta(before)).toEqual({ refreshGrants: 2, reuse: 1 })

      // Reuse detection: the server either revokes the family, or keeps the current token.
      const after = await refresh(context(third)).then(
        () => 'granted',
        (error: unknown) => refreshRejection(error),
      )
      expect(after).toBe(server.reuseRevokesFamily ? 'invalid_grant' : 'granted')
    })
  })

  const storms: Array<{ adapters: string; clients: Harness[] }> = [
    { adapters: '@reauth/fetch', clients: [fetchHarness] },
    { adapters: harnesses.map((h) => h.name).join(', '), clients: harnesses },
  ]
  describe.each(storms)('storm of 200 through $adapters on one engine', ({ clients }) => {
    it.each([
      { mode: 'expired token (the engine refreshes before sending)', reactive: false },
      { mode: 'access token expired at the server only (real 401s)', reactive: true },
    ])('$mode → exactly 1 grant, 200 × 200, 0 reuse', async ({ reactive }) => {
      const client = server.clients.find((c) => c.clientAuth !== 'none') ?? server.clients[0]
      const tokens = await signIn(client as InteropClient)
      const engine = createEngine({
        store: reactive ? storeWithoutExpiry() : createMemoryStore(),
        refresh: createRefreshGrant(clientOptions(client as InteropClient)),
      })
      if (reactive) {
        await server.expireAccessToken(tokens.accessToken)
        expect(await server.isActive(tokens.accessToken)).toBe(false)
        await engine.setTokens(tokens)
      } else {
        await engine.setTokens({ ...tokens, expiresAt: Date.now() - 1000 })
      }
      const testClients: TestClient[] = clients.map((h) => h.create(engine, api.origin))
      const before = await server.counters()
      const apiBefore = { ...api.counters }

      const statuses = await Promise.all(
        Array.from({ length: STORM }, (_, i) =>
          (testClients[i % testClients.length] as TestClient)
            .request(`${api.origin}/orders`)
            .then((r) => r.status),
        ),
      )

      expect(statuses.filter((s) => s !== 200)).toEqual([])
      expect(engine.stats().grants).toBe(1)
      expect(engine.stats().failures).toBe(0)
      expect(await delta(before)).toEqual({ refreshGrants: 1, reuse: 0 })
      const unauthorized = api.counters.unauthorized - apiBefore.unauthorized
      if (reactive) expect(unauthorized).toBeGreaterThan(0)
      else expect(unauthorized).toBe(0)
      // every 401 replayed once with the new token, none retried stale
      expect(engine.stats()).toMatchObject({ replays: unauthorized, staleRetries: 0 })
      // the API asked the server about the new token (and, reactive, the expired one)
      expect(api.counters.introspections - apiBefore.introspections).toBe(reactive ? 2 : 1)
      const current = await engine.getToken()
      expect(current?.refreshToken).not.toBe(tokens.refreshToken)
    })
  })
}
