/** Interop: django-oauth-toolkit (Debian python3-django-oauth-toolkit), an OpenID Provider. */
import { beginSignIn, isSignInError } from '@reauth/oauth'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startDjangoOAuthToolkit } from './servers/dot.js'
import type { InteropServer } from './servers/types.js'
import { interopSuite, signInAt } from './suite.js'

describe('interop: django-oauth-toolkit', () => {
  interopSuite({
    start: () => startDjangoOAuthToolkit(),
    clientAuth: ['none', 'client_secret_basic', 'client_secret_post'],
  })
})

/** Why the suite signs in to DOT with `offlineAccess: false` (README, Interoperability). */
describe('django-oauth-toolkit: what the sign-in needs', () => {
  let server: InteropServer | undefined
  beforeAll(async () => {
    server = await startDjangoOAuthToolkit()
  })
  afterAll(async () => {
    await server?.stop()
  })

  function options(extra: { offlineAccess?: boolean } = {}) {
    const dot = server as InteropServer
    return {
      issuer: dot.issuer,
      clientId: 'dot-public',
      redirectUri: dot.redirectUri,
      allowInsecureRequests: true,
      ...extra,
    }
  }

  it("offlineAccess 'auto' asks DOT for offline_access (its metadata has no scopes_supported) → invalid_scope", async () => {
    const request = await beginSignIn(options())
    // an OpenID Provider: openid by default, prompt=consent with offline_access
    expect(request.url.searchParams.get('scope')).toBe('openid offline_access')
    expect(request.url.searchParams.get('prompt')).toBe('consent')
    const failure = await signInAt(server as InteropServer, options()).catch(
      (error: unknown) => error,
    )
    expect(isSignInError(failure) && failure.error).toBe('invalid_scope')
  })

  it('offlineAccess: false → scope openid, no prompt, and DOT still issues a refresh token', async () => {
    const request = await beginSignIn(options({ offlineAccess: false }))
    expect(request.url.searchParams.get('scope')).toBe('openid')
    expect(request.url.searchParams.has('prompt')).toBe(false)
    const tokens = await signInAt(server as InteropServer, options({ offlineAccess: false }))
    expect(typeof tokens.refreshToken).toBe('string')
    expect(typeof tokens.idToken).toBe('string')
  })
})
