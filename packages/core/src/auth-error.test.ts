import { describe, expect, it } from 'vitest'
import { bearerError, defaultIsAuthError, parseChallenges } from './auth-error.js'
import type { AuthResponse } from './types.js'

function response(status: number, wwwAuthenticate?: string): AuthResponse {
  const headers = new Headers()
  if (wwwAuthenticate !== undefined) headers.set('WWW-Authenticate', wwwAuthenticate)
  return { status, headers }
}

describe('bearerError', () => {
  it('reads a quoted error parameter', () => {
    expect(bearerError('Bearer realm="api", error="insufficient_scope", scope="a b"')).toBe(
      'insufficient_scope',
    )
  })

  it('reads an unquoted error parameter', () => {
    expect(bearerError('Bearer realm=api, error=invalid_token')).toBe('invalid_token')
    expect(bearerError('Bearer error=invalid_request')).toBe('invalid_request')
  })

  it('does not mistake error_description or error_uri for error', () => {
    expect(bearerError('Bearer error_description="expired", error_uri="x"')).toBeUndefined()
    expect(bearerError('Bearer error_description="x", error="invalid_token"')).toBe('invalid_token')
  })

  it('is undefined without a header or without an error parameter', () => {
    expect(bearerError(undefined)).toBeUndefined()
    expect(bearerError(null)).toBeUndefined()
    expect(bearerError('')).toBeUndefined()
    expect(bearerError('Bearer realm="api"')).toBeUndefined()
  })
})

describe('defaultIsAuthError', () => {
  it('treats a plain 401 as an auth failure', () => {
    expect(defaultIsAuthError(response(401))).toBe(true)
    expect(defaultIsAuthError(response(401, 'Bearer realm="api"'))).toBe(true)
  })

  it('treats a 401 with error="invalid_token" (quoted or not) as an auth failure', () => {
    expect(defaultIsAuthError(response(401, 'Bearer error="invalid_token"'))).toBe(true)
    expect(defaultIsAuthError(response(401, 'Bearer realm=api, error=invalid_token'))).toBe(true)
  })

  it('does not refresh for a 401 naming another error (RFC 6750 §3)', () => {
    expect(defaultIsAuthError(response(401, 'Bearer error="insufficient_scope"'))).toBe(false)
    expect(defaultIsAuthError(response(401, 'Bearer error=insufficient_scope'))).toBe(false)
    expect(defaultIsAuthError(response(401, 'Bearer error="invalid_request"'))).toBe(false)
  })

  it('never treats 403 or other statuses as an auth failure', () => {
    expect(defaultIsAuthError(response(403))).toBe(false)
    expect(defaultIsAuthError(response(403, 'Bearer error="invalid_token"'))).toBe(false)
    expect(defaultIsAuthError(response(200))).toBe(false)
    expect(defaultIsAuthError(response(500))).toBe(false)
  })
})

describe('parseChallenges (RFC 9110 §11.6.1)', () => {
  it('reads several challenges in one header, with quoted commas and escapes', () => {
    expect(
      parseChallenges(
        'Newauth realm="apps", type=1, title="Login to \\"apps\\"", Basic realm="simple", Bearer token68abc==',
      ),
    ).toEqual([
      { scheme: 'Newauth', params: { realm: 'apps', type: '1', title: 'Login to "apps"' } },
      { scheme: 'Basic', params: { realm: 'simple' } },
      { scheme: 'Bearer', params: {}, token68: 'token68abc==' },
    ])
  })

  it('a DPoP challenge before a Bearer one is not the Bearer error: an expired Bearer token refreshes', () => {
    const header = 'DPoP error="use_dpop_nonce", Bearer error="invalid_token"'
    expect(bearerError(header)).toBe('invalid_token')
    expect(defaultIsAuthError(response(401, header))).toBe(true)
  })

  it('an error= inside a quoted string is not the error parameter', () => {
    const header = 'Bearer realm="x, error=insufficient_scope", error="invalid_token"'
    expect(bearerError(header)).toBe('invalid_token')
    expect(defaultIsAuthError(response(401, header))).toBe(true)
  })

  it('several WWW-Authenticate headers (joined by Headers.get) are read as several challenges', () => {
    const headers = new Headers()
    headers.append('WWW-Authenticate', 'Basic realm="a, b"')
    headers.append('WWW-Authenticate', 'Bearer error="insufficient_scope"')
    expect(defaultIsAuthError({ status: 401, headers })).toBe(false)
  })

  it('is bounded and never throws on malformed input', () => {
    expect(() => parseChallenges('Bearer error="unterminated')).not.toThrow()
    expect(() => parseChallenges(`Bearer ${'x='.repeat(100_000)}`)).not.toThrow()
    expect(parseChallenges('=,,, "')).toEqual([])
  })
})
