/**
 * No token reachable through `cause` (issue 18, item 5): every error that a refresh through
 * @reauth/oauth's createRefreshGrant hands out — thrown by `engine.refresh()` and in the
 * `refreshError` event — is walked whole (util.inspect with hidden properties and unlimited
 * depth, and JSON of every error in the cause chain) for every token value that went over
 * the wire: the tokens the client held, and every string in every token response, including
 * a JWE ID token (oauth4webapi keeps the whole compact string as its error's cause) and an
 * ID token that fails validation.
 */
import { inspect } from 'node:util'
import { createEngine, type TokenSet } from '@reauth/core'
import { createAuthServer, type TokenOutcome } from '@reauth/msw'
import { createRefreshGrant } from '@reauth/oauth'
import { setupServer } from 'msw/node'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { faults } from '../faults/support.js'

const auth = createAuthServer({ accessTokenTtl: 60 })
const server = setupServer(...auth.handlers)
beforeAll(() => server.listen({ onUnhandledRequest: 'error' }))
afterAll(() => server.close())
beforeEach(() => auth.reset())

const b64u = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')
const random = (bytes: number) => Buffer.from(crypto.getRandomValues(new Uint8Array(bytes)))

/** A JWE compact serialisation (five parts), as an encrypted ID token looks. */
const jwe = [
  b64u({ alg: 'RSA-OAEP-256', enc: 'A256GCM', kid: 'enc-1' }),
  random(256).toString('base64url'),
  random(12).toString('base64url'),
  random(600).toString('base64url'),
  random(16).toString('base64url'),
].join('.')

/** A signed-looking ID token for another client (`aud`): oauth4webapi rejects it. */
const foreignIdToken = [
  b64u({ alg: 'RS256', typ: 'JWT' }),
  b64u({
    iss: auth.issuer,
    sub: 'user-4711',
    aud: 'someone-else',
    iat: Math.floor(Date.now() / 1000),
    exp: Math.floor(Date.now() / 1000) + 600,
  }),
  random(256).toString('base64url'),
].join('.')

const cases: Array<{ name: string; outcome: TokenOutcome }> = [
  ...faults.map(({ name, outcome }) => ({ name, outcome })),
  {
    name: 'a 200 whose id_token is a JWE (decryption not configured)',
    outcome: { type: 'ok', body: { id_token: jwe } },
  },
  {
    name: 'a 200 whose id_token is for another audience',
    outcome: { type: 'ok', body: { id_token: foreignIdToken } },
  },
  {
    name: 'a 200 whose id_token is a JWE, with a malformed expires_in',
    outcome: { type: 'ok', body: { id_token: jwe, expires_in: 'soon' } },
  },
  { name: 'invalid_grant', outcome: { type: 'oauth-error', error: 'invalid_grant' } },
  {
    name: 'invalid_client in a WWW-Authenticate challenge',
    outcome: { type: 'oauth-error', error: 'invalid_client', status: 401 },
  },
]

/** Not secrets: what a message may well name. */
const PUBLIC_FIELDS = new Set(['error', 'error_description', 'error_uri', 'token_type', 'scope'])

/** Every other string value of a JSON body (tokens and their parts), long enough to be one. */
function secretsOf(text: string, into: Set<string>): void {
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch {
    return
  }
  if (typeof body !== 'object' || body === null) return
  for (const [key, value] of Object.entries(body)) {
    if (PUBLIC_FIELDS.has(key) || typeof value !== 'string' || value.length < 8) continue
    into.add(value)
    // a JWT or JWE leaks as much through any of its parts
    for (const part of value.split('.')) if (part.length >= 16) into.add(part)
  }
}

function addTokens(into: Set<string>, tokens: TokenSet): void {
  for (const value of [tokens.accessToken, tokens.refreshToken, tokens.idToken]) {
    if (value) into.add(value)
  }
}

/** The texts an error shows to anyone who prints, logs or serialises it. */
function texts(error: unknown): string[] {
  const found = [inspect(error, { showHidden: true, depth: Number.POSITIVE_INFINITY })]
  let current: unknown = error
  for (let depth = 0; typeof current === 'object' && current !== null && depth < 20; depth++) {
    const record = current as { message?: unknown; stack?: unknown; cause?: unknown }
    found.push(JSON.stringify(current), String(record.message), String(record.stack))
    current = record.cause
  }
  return found
}

describe('no token in any cause: createRefreshGrant', () => {
  it.each(cases)('$name', async ({ outcome }) => {
    const secrets = new Set<string>([jwe, foreignIdToken])
    const initial = auth.signIn()
    addTokens(secrets, initial)
    const refresh = createRefreshGrant({
      issuer: auth.issuer,
      clientId: 'reauth-test',
      fetch: async (input, init) => {
        const response = await fetch(input, init)
        secretsOf(await response.clone().text(), secrets)
        return response
      },
    })
    const engine = createEngine({ tokens: initial, refresh })
    const events: unknown[] = []
    engine.on('refreshError', (payload) => events.push(payload))
    engine.on('sessionExpired', (payload) => events.push(payload))
    auth.enqueue(outcome)
    const error = await engine.refresh().then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(Error)
    expect(events.length).toBeGreaterThan(0)
    const shown = [...texts(error), ...events.flatMap((event) => texts(event))]
    const leaked = [...secrets].filter((secret) => shown.some((text) => text.includes(secret)))
    expect(leaked.map((secret) => `${secret.slice(0, 8)}…`)).toEqual([])
  })

  it('the walk finds a token that is in a cause (the test can fail)', () => {
    const error = new Error('outer', { cause: new Error('inner', { cause: { body: jwe } }) })
    expect(texts(error).some((text) => text.includes(jwe))).toBe(true)
  })
})
