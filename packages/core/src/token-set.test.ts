import { inspect } from 'node:util'
import { describe, expect, it } from 'vitest'
import { issuedRefreshToken, RefreshError } from './errors.js'
import { authorizationHeader, parseTokenResponse, tokenSetProblem } from './token-set.js'

const SENT = Date.UTC(2030, 0, 1)

function parseError(body: unknown): RefreshError {
  try {
    parseTokenResponse(body, { sentAt: SENT })
  } catch (error) {
    expect(error).toBeInstanceOf(RefreshError)
    return error as RefreshError
  }
  throw new Error('expected parseTokenResponse to throw')
}

const ok = { access_token: 'at-SECRET', token_type: 'Bearer' }

describe('parseTokenResponse', () => {
  it('parses a full response, with expiresAt from the time the request was sent', () => {
    expect(
      parseTokenResponse(
        {
          ...ok,
          token_type: 'bearer',
          expires_in: 60,
          refresh_token: 'rt-SECRET',
          scope: 'openid offline_access',
          id_token: 'id-SECRET',
        },
        { sentAt: SENT },
      ),
    ).toEqual({
      accessToken: 'at-SECRET',
      tokenType: 'Bearer',
      issuedAt: SENT,
      expiresAt: SENT + 60_000,
      refreshToken: 'rt-SECRET',
      scope: 'openid offline_access',
      idToken: 'id-SECRET',
    })
  })

  it('leaves optional fields out when absent or null', () => {
    const tokens = parseTokenResponse(
      { ...ok, expires_in: null, refresh_token: null },
      { sentAt: SENT },
    )
    expect(tokens).toEqual({ accessToken: 'at-SECRET', tokenType: 'Bearer', issuedAt: SENT })
    expect('refreshToken' in tokens).toBe(false)
    expect('expiresAt' in tokens).toBe(false)
  })

  it.each<[string, unknown, string]>([
    ['not an object', 'not json', 'body'],
    ['null', null, 'body'],
    ['an array', [ok], 'body'],
    ['no access_token', { token_type: 'Bearer' }, 'access_token'],
    ['empty access_token', { ...ok, access_token: '' }, 'access_token'],
    ['numeric access_token', { ...ok, access_token: 5 }, 'access_token'],
    ['no token_type', { access_token: 'at-SECRET' }, 'token_type'],
    ['token_type mac', { ...ok, token_type: 'mac' }, 'token_type'],
    ['negative expires_in', { ...ok, expires_in: -1 }, 'expires_in'],
    ['non-numeric string expires_in', { ...ok, expires_in: '1h' }, 'expires_in'],
    ['absurd expires_in', { ...ok, expires_in: 1e12 }, 'expires_in'],
    ['NaN expires_in', { ...ok, expires_in: Number.NaN }, 'expires_in'],
    ['Infinity expires_in', { ...ok, expires_in: Number.POSITIVE_INFINITY }, 'expires_in'],
    ['numeric refresh_token', { ...ok, refresh_token: 42 }, 'refresh_token'],
    ['empty refresh_token', { ...ok, refresh_token: '' }, 'refresh_token'],
    ['object id_token', { ...ok, id_token: {} }, 'id_token'],
  ])('rejects %s, naming the field in `field` and the message', (_, body, field) => {
    const error = parseError(body)
    expect(error.retryable).toBe(true)
    expect(error.field).toBe(field)
    expect(error.message).toContain(`"${field}"`)
    expect(error.message).not.toContain('at-SECRET')
  })
})

describe('parseTokenResponse: a JWT access token without expires_in', () => {
  const b64u = (value: unknown) =>
    Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url')
  const jwt = (claims: unknown, header: unknown = { alg: 'RS256', typ: 'at+jwt' }) =>
    `${b64u(header)}.${b64u(claims)}.c2lnbmF0dXJl`
  const parse = (accessToken: string, extra: Record<string, unknown> = {}) =>
    parseTokenResponse({ ...ok, access_token: accessToken, ...extra }, { sentAt: SENT })
  const exp = SENT / 1000 + 300

  it('takes expiresAt from exp (absolute) when the JWT has no iat', () => {
    expect(parse(jwt({ sub: 'svc', exp })).expiresAt).toBe(exp * 1000)
  })

  it('counts the lifetime exp - iat from sentAt, as expires_in is (a skewed clock does not matter)', () => {
    // The server's clock is an hour ahead of ours: exp alone would look an hour late.
    const iat = SENT / 1000 + 3600
    expect(parse(jwt({ iat, exp: iat + 120 })).expiresAt).toBe(SENT + 120_000)
  })

  it('expires_in always wins over exp', () => {
    expect(parse(jwt({ exp }), { expires_in: 60 }).expiresAt).toBe(SENT + 60_000)
  })

  it.each<[string, string]>([
    ['an opaque token', 'at-SECRET'],
    ['two segments', `${b64u({ alg: 'none' })}.${b64u({ exp })}`],
    ['a JWE (five segments)', `${b64u({ alg: 'dir' })}.a.b.c.d`],
    ['a payload that is not base64url', `${b64u({ alg: 'RS256' })}.not*base64.sig`],
    ['a payload that is not JSON', `${b64u({ alg: 'RS256' })}.${b64u('exp=1')}.sig`],
    ['a payload that is an array', jwt([exp])],
    ['a header that is not JSON', `${b64u('RS256')}.${b64u({ exp })}.sig`],
    ['no exp', jwt({ sub: 'svc' })],
    ['a string exp', jwt({ exp: String(exp) })],
    ['a negative exp', jwt({ exp: -1 })],
    ['an exp beyond ten years', jwt({ exp: SENT / 1000 + 11 * 365 * 24 * 3600 })],
    ['a lifetime beyond ten years', jwt({ iat: 1, exp: 1 + 11 * 365 * 24 * 3600 })],
  ])('%s has no expiry, and is no error', (_what, accessToken) => {
    const tokens = parse(accessToken)
    expect(tokens.accessToken).toBe(accessToken)
    expect('expiresAt' in tokens).toBe(false)
  })

  it('an iat after exp is ignored: exp alone counts', () => {
    expect(parse(jwt({ iat: exp + 10, exp })).expiresAt).toBe(exp * 1000)
  })
})

describe('tokenSetProblem', () => {
  it('accepts a valid set', () => {
    expect(tokenSetProblem({ accessToken: 'a', tokenType: 'bearer' })).toBeUndefined()
    expect(
      tokenSetProblem({
        accessToken: 'a',
        tokenType: 'Bearer',
        refreshToken: 'r',
        expiresAt: 1,
        issuedAt: 0,
        scope: 's',
        idToken: 'i',
      }),
    ).toBeUndefined()
  })

  it.each<[unknown, string]>([
    [null, 'object'],
    ['x', 'object'],
    [{ tokenType: 'Bearer' }, '"accessToken"'],
    [{ accessToken: '', tokenType: 'Bearer' }, '"accessToken"'],
    [{ accessToken: 'a', tokenType: 'mac' }, '"tokenType"'],
    [{ accessToken: 'a' }, '"tokenType"'],
    [{ accessToken: 'a', tokenType: 'Bearer', refreshToken: 1 }, '"refreshToken"'],
    [{ accessToken: 'a', tokenType: 'Bearer', scope: [] }, '"scope"'],
    [{ accessToken: 'a', tokenType: 'Bearer', expiresAt: '1' }, '"expiresAt"'],
    [{ accessToken: 'a', tokenType: 'Bearer', expiresAt: Number.NaN }, '"expiresAt"'],
    [{ accessToken: 'a', tokenType: 'Bearer', issuedAt: Number.POSITIVE_INFINITY }, '"issuedAt"'],
  ])('names the problem of %j', (value, needle) => {
    expect(tokenSetProblem(value)).toContain(needle)
  })
})

describe('authorizationHeader', () => {
  it('is "Bearer <access token>"', () => {
    expect(authorizationHeader({ accessToken: 'abc', tokenType: 'bearer' })).toBe('Bearer abc')
  })

  it('accepts a numeric string expires_in, as servers send it (oauth4webapi coerces it too)', () => {
    const tokens = parseTokenResponse({ ...ok, expires_in: '3600' }, { sentAt: 1_000 })
    expect(tokens.expiresAt).toBe(1_000 + 3_600_000)
  })

  it('accepts token_type in any case', () => {
    expect(parseTokenResponse({ ...ok, token_type: 'BEARER' }, { sentAt: 0 }).tokenType).toBe(
      'Bearer',
    )
  })

  it.each([
    ['a string expires_in out of range', { expires_in: '10000000000' }],
    ['a negative expires_in', { expires_in: -5 }],
    ['an absurd expires_in', { expires_in: 1e10 }],
    ['no token_type', { token_type: undefined }],
    ['an unknown token_type', { token_type: 'mac' }],
    ['an empty access_token', { access_token: '' }],
  ])(
    'keeps the rotated refresh token of a response with %s for the engine (not on the error)',
    (_, change) => {
      const error = parseError({ ...ok, refresh_token: 'rt-NEW-SECRET', ...change })
      expect(issuedRefreshToken(error)).toBe('rt-NEW-SECRET')
      expect(inspect(error, { showHidden: true, depth: 10 })).not.toContain('rt-NEW-SECRET')
      expect(JSON.stringify(error)).not.toContain('rt-NEW-SECRET')
    },
  )
})

describe('DPoP token sets (RFC 9449 §5)', () => {
  it.each(['DPoP', 'dpop', 'DPOP'])(
    'parseTokenResponse accepts token_type %s as "DPoP"',
    (type) => {
      const tokens = parseTokenResponse({ ...ok, token_type: type }, { sentAt: 0 })
      expect(tokens.tokenType).toBe('DPoP')
      expect(authorizationHeader(tokens)).toBe('DPoP at-SECRET')
    },
  )

  it('tokenSetProblem accepts a DPoP set in any case, and still names other types', () => {
    expect(tokenSetProblem({ accessToken: 'a', tokenType: 'DPoP' })).toBeUndefined()
    expect(tokenSetProblem({ accessToken: 'a', tokenType: 'dpop' })).toBeUndefined()
    expect(tokenSetProblem({ accessToken: 'a', tokenType: 'PoP' })).toBe(
      '"tokenType" must be "Bearer" or "DPoP"',
    )
  })

  it('authorizationHeader is "DPoP <token>" for a DPoP set of any case, "Bearer <token>" otherwise', () => {
    expect(authorizationHeader({ accessToken: 'abc', tokenType: 'dpop' })).toBe('DPoP abc')
    expect(authorizationHeader({ accessToken: 'abc', tokenType: 'Bearer' })).toBe('Bearer abc')
  })
})
