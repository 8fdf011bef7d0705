import { describe, expect, it } from 'vitest'
import {
  isOAuthError,
  isReauthError,
  isReauthOptionsError,
  isRefreshError,
  isReplayQueueFullError,
  isSessionExpiredError,
  OAuthError,
  ReauthError,
  ReauthOptionsError,
  RefreshError,
  ReplayQueueFullError,
  SessionExpiredError,
} from './errors.js'

const cause = new Error('underlying')

const cases = [
  {
    error: new SessionExpiredError('ended', { error: 'invalid_grant' }, { cause }),
    name: 'SessionExpiredError',
    code: 'SESSION_EXPIRED',
    guard: isSessionExpiredError,
    Class: SessionExpiredError,
  },
  {
    error: new RefreshError('failed', { retryable: true }, { cause }),
    name: 'RefreshError',
    code: 'REFRESH_FAILED',
    guard: isRefreshError,
    Class: RefreshError,
  },
  {
    error: new OAuthError({ error: 'invalid_grant' }, { cause }),
    name: 'OAuthError',
    code: 'OAUTH_ERROR',
    guard: isOAuthError,
    Class: OAuthError,
  },
  {
    error: new ReauthOptionsError('"x" must be y'),
    name: 'ReauthOptionsError',
    code: 'INVALID_OPTION',
    guard: isReauthOptionsError,
    Class: ReauthOptionsError,
  },
  {
    error: new ReplayQueueFullError(3),
    name: 'ReplayQueueFullError',
    code: 'REPLAY_QUEUE_FULL',
    guard: isReplayQueueFullError,
    Class: ReplayQueueFullError,
  },
] as const

const guards = [
  isSessionExpiredError,
  isRefreshError,
  isOAuthError,
  isReauthOptionsError,
  isReplayQueueFullError,
]

describe('error classes', () => {
  it.each(cases)('$name has a literal name, a stable code and is a ReauthError', (c) => {
    expect(c.error).toBeInstanceOf(c.Class)
    expect(c.error).toBeInstanceOf(ReauthError)
    expect(c.error).toBeInstanceOf(Error)
    expect(c.error.name).toBe(c.name)
    expect(c.error.code).toBe(c.code)
    expect(isReauthError(c.error)).toBe(true)
    expect(c.guard(c.error)).toBe(true)
    // Exactly one specific guard accepts it.
    expect(guards.filter((g) => g(c.error))).toEqual([c.guard])
  })

  it('keeps cause', () => {
    expect(cases[0].error.cause).toBe(cause)
    expect(cases[1].error.cause).toBe(cause)
    expect(cases[2].error.cause).toBe(cause)
    expect(new RefreshError('x', { retryable: false }).cause).toBeUndefined()
    expect('cause' in new RefreshError('x', { retryable: false })).toBe(false)
  })

  it('attaches request and response non-enumerable, so they stay out of JSON', () => {
    const request = { url: 'https://api.example.com/me', big: 'x'.repeat(100) }
    const response = { status: 500, body: 'huge-response-body' }
    const error = new RefreshError(
      'failed',
      { retryable: true, status: 500 },
      { request, response },
    )
    expect(error.request).toBe(request)
    expect(error.response).toBe(response)
    expect(Object.keys(error)).not.toContain('request')
    expect(Object.keys(error)).not.toContain('response')
    const json = JSON.stringify(error)
    expect(json).not.toContain('huge-response-body')
    expect(json).not.toContain('api.example.com')
    expect(JSON.parse(json)).toMatchObject({
      name: 'RefreshError',
      code: 'REFRESH_FAILED',
      status: 500,
    })
    // Absent when not given.
    expect(Object.getOwnPropertyNames(new RefreshError('x', { retryable: true }))).not.toContain(
      'request',
    )
  })

  it('carries the OAuth fields', () => {
    const oauth = new OAuthError({
      error: 'invalid_grant',
      errorDescription: 'revoked',
      status: 400,
      retryAfter: 5000,
    })
    expect(oauth).toMatchObject({
      error: 'invalid_grant',
      errorDescription: 'revoked',
      status: 400,
      retryAfter: 5000,
    })
    expect(oauth.message).toContain('invalid_grant')
    const refresh = new RefreshError('m', {
      retryable: true,
      field: 'expires_in',
      retryAfter: 1000,
      error: 'temporarily_unavailable',
      status: 503,
    })
    expect(refresh).toMatchObject({
      retryable: true,
      field: 'expires_in',
      retryAfter: 1000,
      error: 'temporarily_unavailable',
      status: 503,
    })
    expect(new ReplayQueueFullError(7).message).toContain('7')
  })
})

describe('isXError guards', () => {
  it('accept a branded error from another realm by its name', () => {
    const foreign = (name: string) => {
      const error = new Error('from another realm')
      error.name = name
      Object.defineProperty(error, Symbol.for('reauth.error'), { value: true })
      return error
    }
    expect(isReauthError(foreign('Whatever'))).toBe(true)
    expect(isSessionExpiredError(foreign('SessionExpiredError'))).toBe(true)
    expect(isRefreshError(foreign('RefreshError'))).toBe(true)
    expect(isOAuthError(foreign('OAuthError'))).toBe(true)
    expect(isReauthOptionsError(foreign('ReauthOptionsError'))).toBe(true)
    expect(isReplayQueueFullError(foreign('ReplayQueueFullError'))).toBe(true)
    // A plain object carrying the brand works too (structured clone, other realm).
    expect(isRefreshError({ name: 'RefreshError', [Symbol.for('reauth.error')]: true })).toBe(true)
    // Right brand, wrong name.
    expect(isRefreshError(foreign('SessionExpiredError'))).toBe(false)
  })

  it('reject plain errors, even with a matching name, and non-objects', () => {
    const plain = new Error('nope')
    plain.name = 'RefreshError'
    expect(isRefreshError(plain)).toBe(false)
    expect(isReauthError(plain)).toBe(false)
    expect(isReauthError(new Error('x'))).toBe(false)
    expect(isReauthError({ name: 'RefreshError' })).toBe(false)
    expect(isReauthError({ [Symbol.for('reauth.error')]: 'yes' })).toBe(false)
    for (const value of [undefined, null, 'RefreshError', 42, () => {}]) {
      expect(isReauthError(value)).toBe(false)
      expect(isRefreshError(value)).toBe(false)
    }
  })
})
