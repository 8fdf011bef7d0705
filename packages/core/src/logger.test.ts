import { describe, expect, it, vi } from 'vitest'
import { createLogger, describeUrl } from './logger.js'

describe('createLogger', () => {
  it('prefixes lines and passes meta only when given', () => {
    const sink = { debug: vi.fn(), info: vi.fn(), warn: vi.fn(), error: vi.fn() }
    const log = createLogger(sink)
    log.info('hello')
    log.warn('careful', { reason: 'x' })
    expect(sink.info).toHaveBeenCalledWith('[reauth] hello')
    expect(sink.info.mock.calls[0]).toHaveLength(1)
    expect(sink.warn).toHaveBeenCalledWith('[reauth] careful', { reason: 'x' })
  })

  it('has every level even when the sink lacks some, and no sink at all works', () => {
    const sink = { error: vi.fn() }
    const log = createLogger(sink)
    log.debug('a')
    log.info('b')
    log.warn('c')
    log.error('d')
    expect(sink.error).toHaveBeenCalledTimes(1)
    expect(() => createLogger(undefined).error('x')).not.toThrow()
  })

  it('never throws when the sink throws, and calls it with its own this', () => {
    const sink = {
      lines: [] as string[],
      warn(this: { lines: string[] }, message: string) {
        this.lines.push(message)
        throw new Error('broken sink')
      },
    }
    const log = createLogger(sink)
    expect(() => log.warn('x')).not.toThrow()
    expect(sink.lines).toEqual(['[reauth] x'])
  })
})

describe('describeUrl', () => {
  it('gives METHOD origin/path and drops the query and fragment', () => {
    expect(describeUrl('get', 'https://api.example.com/me?access_token=SECRET#frag')).toBe(
      'GET https://api.example.com/me',
    )
    expect(describeUrl(undefined, new URL('http://localhost:8080/a/b?x=1'))).toBe(
      'http://localhost:8080/a/b',
    )
  })

  it('copes with an invalid URL', () => {
    expect(describeUrl('POST', 'not a url')).toBe('POST (invalid URL)')
  })
})
