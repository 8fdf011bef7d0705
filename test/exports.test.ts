/**
 * The names each published entry exports, so trimming or adding one is a decision the diff
 * shows: users get `@reauth/core`, adapter authors `@reauth/core/adapter`; internals stay out.
 */
import { describe, expect, it } from 'vitest'

const entries: Record<string, string[]> = {
  core: [
    'OAuthError',
    'ReauthError',
    'ReauthOptionsError',
    'RefreshError',
    'ReplayQueueFullError',
    'SessionExpiredError',
    'createDpopProof',
    'createEngine',
    'createLocalLock',
    'createMemoryStore',
    'defaultIsAuthError',
    'dpopThumbprint',
    'exportDpopKeyPair',
    'generateDpopKeyPair',
    'importDpopKeyPair',
    'isOAuthError',
    'isReauthError',
    'isReauthOptionsError',
    'isRefreshError',
    'isReplayQueueFullError',
    'isSessionEnd',
    'isSessionExpiredError',
    'parseChallenges',
    'parseTokenResponse',
    'storedSessionProblem',
  ],
  'core/adapter': [
    'LATER',
    'assertEngine',
    'baseOrigin',
    'connect',
    'createLogger',
    'createOriginMatcher',
    'createParkingLot',
    'deadlineSignal',
    'describeUrl',
    'isEngine',
    'pageOrigin',
    'requestBase',
    'resolveRequestUrl',
    'run',
    'unreplayableBody',
  ],
  fetch: ['createFetch'],
  axios: ['attachReauth'],
  ky: ['reauthHooks', 'withReauth'],
  oauth: [
    'DiscoveryError',
    'MAX_DISCOVERY_REDIRECTS',
    'PROTECTED_PARAMETERS',
    'RevocationError',
    'SignInError',
    'beginSignIn',
    'clientCredentials',
    'completeSignIn',
    'createRefreshGrant',
    'discover',
    'isDiscoveryError',
    'isRevocationError',
    'isSignInError',
    'revokeTokens',
  ],
  msw: ['bearerChallenge', 'createAuthServer', 'pkceChallenge'],
  redis: [
    'RedisLockError',
    'createRedisLock',
    'createRedisSession',
    'createRedisStore',
    'isRedisLockError',
  ],
  browser: [
    'KeyStoreError',
    'TabSyncError',
    'createBroadcastStore',
    'createStorageStore',
    'createWebLock',
    'isKeyStoreError',
    'isTabSyncError',
  ],
  otel: ['INSTRUMENTATION_SCOPE', 'instrumentEngine'],
}

describe('published entries', () => {
  it.each(Object.entries(entries))(
    '@reauth/%s exports exactly its documented names',
    async (entry, names) => {
      const module: Record<string, unknown> = await import(`@reauth/${entry}`)
      expect(Object.keys(module).sort()).toEqual([...names].sort())
    },
  )

  it('no engine step leaks onto the user’s engine', async () => {
    const { createEngine } = await import('@reauth/core')
    const engine = createEngine({ refresh: async ({ tokens }) => tokens })
    expect(Object.keys(engine).sort()).toEqual(
      ['clear', 'dispose', 'getToken', 'on', 'refresh', 'setTokens', 'stats'].sort(),
    )
  })
})
