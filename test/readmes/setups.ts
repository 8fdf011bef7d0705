/**
 * What each README's snippets take as given, supplied by a small prelude: `tokens` from a
 * sign-in, an `issuer` and `clientId`, a `refresh` function, a `router`, and the world they
 * talk to: an authorization server and a protected API at https://api.example.com, both
 * @reauth/msw handlers on msw/node with `onUnhandledRequest: 'error'`, so a snippet that
 * reaches anything else fails. The signed-in access token is expired at the server before the
 * snippets run, so their first request meets a 401 and makes a real refresh grant.
 */

/** How a README's module is run. */
export interface ReadmeSetup {
  /**
   * `node`: the module runs as a script; `vitest`: the README shows a test file, vitest runs it;
   * `browser`: bundled and run in a page of headless Chromium, served by a loopback token server.
   */
  runner: 'node' | 'vitest' | 'browser'
  /** Code before the blocks (its imports are merged with the README's). */
  prelude: string
  /** Code after the blocks, in their innermost scope. */
  epilogue: string
  /** Other modules the snippets import, by path relative to the generated README module. */
  files: Readonly<Record<string, string>>
  /** The least number of refresh grants the snippets must have made (node runner). */
  minGrants: number
  /** The snippets talk to Redis: the test starts a redis-server and passes `REDIS_URL`. */
  redis?: boolean
}

/** The ky the README shows is the current major; the test workspace installs it as `ky2`. */
export const aliases = { ky: 'ky2' } as const

/** The line a node-run README module prints last: the fake server's counters. */
export const RESULT_MARKER = 'readme-test:result '

function nodePrelude(issuer: string): string {
  return `import { createAuthServer } from '@reauth/msw'
import { createRefreshGrant } from '@reauth/oauth'
import type { RefreshFunction, TokenSet } from '@reauth/core'
import { setupServer } from 'msw/node'

// Blocks that are alternatives share the tokens (two engines over one sign-in): the server does
// not rotate refresh tokens, so each of them may refresh with it.
const readmeAuth = createAuthServer({
  issuer: '${issuer}',
  clientId: 'my-app',
  rotateRefreshTokens: false,
})
const readmeServer = setupServer(
  ...readmeAuth.handlers,
  readmeAuth.protect('all', 'https://api.example.com/*'),
)
readmeServer.listen({ onUnhandledRequest: 'error' })

const issuer = readmeAuth.issuer
const clientId = 'my-app'
const tokens: TokenSet = readmeAuth.signIn()
const refresh: RefreshFunction = createRefreshGrant({ issuer, clientId })
async function signIn(): Promise<TokenSet> {
  return readmeAuth.signIn()
}
function myRefreshGrant(tokens: TokenSet, signal: AbortSignal): Promise<TokenSet> {
  return refresh({ tokens, signal, startedAt: Date.now() })
}
const router = {
  push(path: string): void {
    console.log('router.push', path)
  },
}
readmeAuth.expireAccessTokens()
`
}

const nodeEpilogue = `readmeServer.close()
console.log('${RESULT_MARKER}' + JSON.stringify(readmeAuth.counters))
`

const node = (issuer = 'https://auth.example.com'): ReadmeSetup => ({
  runner: 'node',
  prelude: nodePrelude(issuer),
  epilogue: nodeEpilogue,
  files: {},
  minGrants: 1,
})

/** The app a testing README imports (`../src/api.js`): axios with reauth over a token endpoint. */
const apiClient = `import axios, { type AxiosInstance } from 'axios'
import { attachReauth } from '@reauth/axios'
import { createEngine, OAuthError, parseTokenResponse, type TokenSet } from '@reauth/core'

export function createApiClient(options: {
  tokens: TokenSet
  tokenEndpoint: string
  clientId: string
}): AxiosInstance {
  const engine = createEngine({
    tokens: options.tokens,
    async refresh({ tokens, signal, startedAt }) {
      const response = await fetch(options.tokenEndpoint, {
        method: 'POST',
        body: new URLSearchParams({
          grant_type: 'refresh_token',
          refresh_token: tokens.refreshToken ?? '',
          client_id: options.clientId,
        }),
        signal,
      })
      const body: { error?: string } = await response.json().catch(() => ({}))
      if (body.error) throw new OAuthError({ error: body.error, status: response.status })
      if (!response.ok) throw new OAuthError({ error: 'server_error', status: response.status })
      return parseTokenResponse(body, { sentAt: startedAt })
    },
  })
  const api = axios.create({ baseURL: 'https://api.example.test' })
  attachReauth(api, engine)
  return api
}
`

/** The Redis README: a real redis-server (started by the test), a key for encryption at rest. */
const redis: ReadmeSetup = {
  ...node(),
  prelude: `${node().prelude}process.env.REAUTH_KEY ??= Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64')
`,
  // Release what the snippets opened, so the process can end.
  epilogue: `engine.dispose()
await redis.close()
${nodeEpilogue}`,
  redis: true,
}

/** The line a browser-run README module logs last (the test adds the server's counters). */
export const DONE_MARKER = 'readme-test:done'

/**
 * A page of the loopback token server in test/browser/server.ts (POST /token rotates, GET
 * /api/data is protected); the test signs in and hands the page its session.
 */
const browserPrelude = `import { OAuthError, parseTokenResponse, type RefreshFunction, type TokenSet } from '@reauth/core'
import { createFetch } from '@reauth/fetch'

const readmeSession = (globalThis as unknown as { readmeSession?: TokenSet }).readmeSession
async function signIn(): Promise<TokenSet> {
  if (!readmeSession) throw new Error('the test did not sign in')
  return readmeSession
}
const refresh: RefreshFunction = async ({ tokens, signal, startedAt }) => {
  const response = await fetch('/token', {
    method: 'POST',
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: tokens.refreshToken ?? '' }),
    signal,
  })
  const body: { error?: unknown } = await response.json()
  if (typeof body.error === 'string') throw new OAuthError({ error: body.error, status: response.status })
  return parseTokenResponse(body, { sentAt: startedAt })
}
`

/** Setups by README path (relative to the repository root); any other README gets `node()`. */
const setups: Record<string, ReadmeSetup> = {
  // The same-instance refresh functions post to /oauth/token on the API's own origin.
  'packages/axios/README.md': { ...node('https://api.example.com'), minGrants: 2 },
  'packages/ky/README.md': { ...node('https://api.example.com'), minGrants: 2 },
  'packages/redis/README.md': redis,
  // The service snippets talk to a second, confidential server (client credentials) and an
  // inventory API on its own origin; the per-resource snippet to two resource servers of the
  // sign-in's server, each taking only tokens for its own audience (RFC 8707).
  'packages/core/README.md': {
    ...node(),
    prelude: `${node().prelude}const readmeSts = createAuthServer({
  issuer: 'https://sts.example.com',
  clientId: 'my-service',
  clientSecret: 'dev-secret',
})
readmeServer.use(
  ...readmeSts.handlers,
  readmeSts.protect('all', 'https://inventory.example.com/*'),
  readmeAuth.protect('all', 'https://orders.example.com/*', undefined, { resource: 'https://orders.example.com' }),
  readmeAuth.protect('all', 'https://billing.example.com/*', undefined, { resource: 'https://billing.example.com' }),
)
`,
  },
  // The service snippets talk to a second, confidential server (client credentials) and the
  // service's API on its own origin.
  'packages/oauth/README.md': {
    ...node(),
    prelude: `${node().prelude}const readmeSts = createAuthServer({
  issuer: 'https://sts.example.com',
  clientId: 'my-service',
  clientSecret: 'dev-secret',
})
readmeServer.use(...readmeSts.handlers, readmeSts.protect('all', 'https://orders.example.com/*'))
`,
  },
  // The server expired the session's access token: a request through the README's engine meets
  // a 401 and refreshes through its Web Lock and BroadcastChannel store.
  'packages/browser/README.md': {
    runner: 'browser',
    prelude: browserPrelude,
    epilogue: `const readmeResponse = await createFetch(engine)('/api/data')
if (!readmeResponse.ok) throw new Error(\`GET /api/data answered \${readmeResponse.status}\`)
console.log('${DONE_MARKER}')
`,
    files: {},
    minGrants: 1,
  },
  'packages/msw/README.md': {
    runner: 'vitest',
    prelude: '',
    epilogue: '',
    files: { '../src/api.ts': apiClient },
    minGrants: 0,
  },
}

/** The setup of a README. */
export function setupFor(readme: string): ReadmeSetup {
  return setups[readme] ?? node()
}
