/** Interop: django-oauth-toolkit (Debian python3-django-oauth-toolkit), an OpenID Provider. */
import { isOAuthError } from '@reauth/core'
import { beginSignIn } from '@reauth/oauth'
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

/**
 * What @reauth/oauth does not yet do with this server, pinned so the workaround in the
 * suite is dropped when the fix lands (README, Interoperability). Discovery is pinned in
 * the suite itself (the `server` metadata workaround).
 */
describe('django-oauth-toolkit: known incompatibilities of @reauth/oauth (pinned)', () => {
  let strict: InteropServer | undefined
  beforeAll(async () => {
    strict = await startDjangoOAuthToolkit({ acceptOfflineAccess: false })
  })
  afterAll(async () => {
    await strict?.stop()
  })

  it('beginSignIn always adds offline_access → invalid_scope unless offline_access is in SCOPES', async () => {
    const server = strict as InteropServer
    const options = {
      server: server.server as NonNullable<InteropServer['server']>,
      clientId: 'dot-public',
      redirectUri: server.redirectUri,
      scope: 'openid read',
      allowInsecureRequests: true,
    }
    const request = await beginSignIn(options)
    expect(request.url.searchParams.get('scope')).toBe('openid read offline_access')
    const failure = await signInAt(server, options).catch((error: unknown) => error)
    expect(isOAuthError(failure) && failure.error).toBe('invalid_scope')
  })
})
