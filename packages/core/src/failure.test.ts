import { describe, expect, it } from 'vitest'
import { OAuthError, RefreshError, SessionExpiredError } from './errors.js'
import {
  classifyRefreshFailure,
  parseRetryAfter,
  redact,
  TERMINAL_OAUTH_ERRORS,
} from './failure.js'

const NOW = Date.UTC(2030, 0, 1, 0, 0, 0)

function headers(values: Record<string, string>) {
  const h = new Headers(values)
  return { get: (name: string) => h.get(name) }
}

describe('parseRetryAfter', () => {
  it('reads delay-seconds', () => {
    expect(parseRetryAfter('2', NOW)).toBe(2000)
    expect(parseRetryAfter(' 0 ', NOW)).toBe(0)
  })

  it('reads an HTTP date relative to now, never negative', () => {
    expect(parseRetryAfter(new Date(NOW + 5000).toUTCString(), NOW)).toBe(5000)
    expect(parseRetryAfter(new Date(NOW - 5000).toUTCString(), NOW)).toBe(0)
  })

  it('passes numbers (ms) through and rejects garbage', () => {
    expect(parseRetryAfter(1500, NOW)).toBe(1500)
    expect(parseRetryAfter(-1, NOW)).toBeUndefined()
    expect(parseRetryAfter(Number.NaN, NOW)).toBeUndefined()
    expect(parseRetryAfter('soon', NOW)).toBeUndefined()
    expect(parseRetryAfter('', NOW)).toBeUndefined()
    expect(parseRetryAfter(undefined, NOW)).toBeUndefined()
    expect(parseRetryAfter(null, NOW)).toBeUndefined()
  })
})

describe('redact', () => {
  it('removes every secret of 4+ characters', () => {
    expect(redact('a secret-1 and secret-2, secret-1', ['secret-1', 'secret-2', undefined])).toBe(
      'a [redacted] and [redacted], [redacted]',
    )
    expect(redact('abc', ['abc'])).toBe('abc')
  })
})

describe('classifyRefreshFailure', () => {
  it('knows the terminal OAuth errors', () => {
    expect([...TERMINAL_OAUTH_ERRORS].sort()).toEqual([
      'invalid_client',
      'invalid_grant',
      'unauthorized_client',
    ])
  })

  it.each(['invalid_grant', 'invalid_client', 'unauthorized_client'])(
    'maps %s (OAuthError or a plain error-like object) to SessionExpiredError',
    (code) => {
      const fromClass = classifyRefreshFailure(
        new OAuthError({ error: code, errorDescription: 'no', status: 400 }),
        [],
        NOW,
      )
      expect(fromClass).toBeInstanceOf(SessionExpiredError)
      expect(fromClass).toMatchObject({ error: code, errorDescription: 'no', status: 400 })

      // Like oauth4webapi's ResponseBodyError.
      const body = Object.assign(new Error('server responded with an error in the response body'), {
        name: 'ResponseBodyError',
        error: code,
        error_description: 'described',
        status: 400,
      })
      const fromLike = classifyRefreshFailure(body, [], NOW)
      expect(fromLike).toBeInstanceOf(SessionExpiredError)
      expect(fromLike).toMatchObject({ error: code, errorDescription: 'described', status: 400 })
      expect(fromLike.cause).toMatchObject({ name: 'ResponseBodyError', error: code, status: 400 })
      expect(fromLike.message).toContain(code)
    },
  )

  it('maps a network TypeError to a retryable RefreshError keeping the cause, with secrets redacted', () => {
    const cause = new TypeError('fetch failed near refresh-SECRET')
    const failure = classifyRefreshFailure(cause, ['access-SECRET', 'refresh-SECRET'], NOW)
    expect(failure).toBeInstanceOf(RefreshError)
    expect(failure).toMatchObject({ retryable: true })
    expect(failure.cause).toBeInstanceOf(TypeError)
    expect((failure.cause as Error).message).not.toContain('refresh-SECRET')
    expect(failure.message).toContain('TypeError')
    expect(failure.message).not.toContain('refresh-SECRET')
  })

  it('maps 5xx to retryable, via status or response.status', () => {
    const a = classifyRefreshFailure({ status: 503 }, [], NOW)
    expect(a).toBeInstanceOf(RefreshError)
    expect(a).toMatchObject({ retryable: true, status: 503 })
    const b = classifyRefreshFailure({ response: { status: 502 } }, [], NOW)
    expect(b).toMatchObject({ retryable: true, status: 502 })
  })

  it('reads Retry-After in seconds or HTTP-date form from the response, or retryAfter', () => {
    const seconds = classifyRefreshFailure(
      { response: { status: 429, headers: headers({ 'Retry-After': '7' }) } },
      [],
      NOW,
    )
    expect(seconds).toMatchObject({ retryable: true, status: 429, retryAfter: 7000 })
    const date = classifyRefreshFailure(
      {
        response: {
          status: 429,
          headers: headers({ 'retry-after': new Date(NOW + 3000).toUTCString() }),
        },
      },
      [],
      NOW,
    )
    expect(date).toMatchObject({ retryAfter: 3000 })
    const field = classifyRefreshFailure(
      new OAuthError({ error: 'slow_down', status: 429, retryAfter: 1234 }),
      [],
      NOW,
    )
    expect(field).toBeInstanceOf(RefreshError)
    expect(field).toMatchObject({ retryable: true, retryAfter: 1234, error: 'slow_down' })
  })

  it('makes a non-terminal 4xx OAuth error non-retryable, and one without status retryable', () => {
    expect(
      classifyRefreshFailure({ error: 'invalid_request', status: 400 }, [], NOW),
    ).toMatchObject({
      retryable: false,
      error: 'invalid_request',
    })
    expect(classifyRefreshFailure({ error: 'temporarily_unavailable' }, [], NOW)).toMatchObject({
      retryable: true,
    })
  })

  it('passes reauth errors through untouched', () => {
    const refresh = new RefreshError('x', { retryable: true, field: 'access_token' })
    const ended = new SessionExpiredError('y')
    expect(classifyRefreshFailure(refresh, [], NOW)).toBe(refresh)
    expect(classifyRefreshFailure(ended, [], NOW)).toBe(ended)
  })

  it('copes with non-object throws', () => {
    const failure = classifyRefreshFailure('a string', [], NOW)
    expect(failure).toBeInstanceOf(RefreshError)
    expect(failure.message).toContain('string')
    expect(classifyRefreshFailure(undefined, [], NOW)).toBeInstanceOf(RefreshError)
  })
})
