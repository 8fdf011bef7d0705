import { describe, expect, it, vi } from 'vitest'
import { connect } from './adapter.js'
import { createEngine } from './engine.js'
import { isReauthOptionsError, ReauthOptionsError } from './errors.js'
import { createOriginMatcher } from './origins.js'
import type { OriginPolicy } from './types.js'

const url = (value: string) => new URL(value)

describe('createOriginMatcher', () => {
  it('matches an exact origin, including scheme and port', () => {
    const allowed = createOriginMatcher([
      'https://api.example.com',
      'http://localhost:8080/ignored',
    ])
    expect(allowed(url('https://api.example.com/me?x=1'))).toBe(true)
    expect(allowed(url('https://api.example.com:443/me'))).toBe(true)
    expect(allowed(url('http://api.example.com/me'))).toBe(false)
    expect(allowed(url('https://api.example.com:8443/me'))).toBe(false)
    expect(allowed(url('https://evil.example/me'))).toBe(false)
    expect(allowed(url('https://api.example.com.evil.example/me'))).toBe(false)
    expect(allowed(url('http://localhost:8080/a'))).toBe(true)
    expect(allowed(url('http://localhost:8081/a'))).toBe(false)
    expect(allowed(url('http://localhost/a'))).toBe(false)
  })

  it('tests RegExps against the origin', () => {
    const allowed = createOriginMatcher([/^https:\/\/[a-z]+\.example\.com$/])
    expect(allowed(url('https://api.example.com/x'))).toBe(true)
    expect(allowed(url('https://auth.example.com/x'))).toBe(true)
    expect(allowed(url('http://api.example.com/x'))).toBe(false)
    // The path is not part of the origin, so it cannot smuggle a match.
    expect(allowed(url('https://evil.test/https://api.example.com'))).toBe(false)
  })

  it('uses a function as is', () => {
    const seen: string[] = []
    const allowed = createOriginMatcher((u) => {
      seen.push(u.pathname)
      return u.pathname.startsWith('/api')
    })
    expect(allowed(url('https://a.test/api/x'))).toBe(true)
    expect(allowed(url('https://a.test/other'))).toBe(false)
    expect(seen).toEqual(['/api/x', '/other'])
  })

  it('allows nothing with an empty list', () => {
    expect(createOriginMatcher([])(url('https://api.example.com'))).toBe(false)
  })

  it.each([
    ['a relative URL', ['/api']],
    ['a bare host', ['api.example.com']],
    ['a number', [42]],
    ['null', [null]],
    ['an origin-less URL', ['data:text/plain,hi']],
  ])('throws ReauthOptionsError naming the option for %s', (_, entries) => {
    let thrown: unknown
    try {
      createOriginMatcher(entries as unknown as OriginPolicy, 'origins')
    } catch (error) {
      thrown = error
    }
    expect(thrown).toBeInstanceOf(ReauthOptionsError)
    expect(isReauthOptionsError(thrown)).toBe(true)
    expect((thrown as Error).message).toContain('"origins"')
  })

  it('throws for a policy that is neither an array nor a function, quoting the given option name', () => {
    expect(() =>
      createOriginMatcher('https://a.test' as unknown as OriginPolicy, 'myOrigins'),
    ).toThrow(/"myOrigins" must be an array of origins or a function/)
  })
})

describe('connect: where an adapter sends the token', () => {
  const engineWith = (origins?: string[]) =>
    createEngine({ refresh: async ({ tokens }) => tokens, ...(origins ? { origins } : {}) })
  it('prefers the adapter list, then the engine list, then the client base origin', () => {
    const own = connect(engineWith(['https://engine.test']), {
      origins: ['https://own.test'],
      base: 'https://base.test',
      baseHint: 'x',
    }).allowed
    expect([own(url('https://own.test/a')), own(url('https://engine.test/a'))]).toEqual([
      true,
      false,
    ])
    const engine = connect(engineWith(['https://engine.test']), {
      base: 'https://base.test',
      baseHint: 'x',
    }).allowed
    expect([engine(url('https://engine.test/a')), engine(url('https://base.test/a'))]).toEqual([
      true,
      false,
    ])
    const base = connect(engineWith(), { base: 'https://base.test', baseHint: 'x' }).allowed
    expect([base(url('https://base.test/a')), base(url('https://other.test/a'))]).toEqual([
      true,
      false,
    ])
  })

  it('throws a ReauthOptionsError naming "origins" and the hint when there is nothing to go on', () => {
    expect(() => connect(engineWith(), { baseHint: 'the instance a baseURL' })).toThrow(
      /"origins" is required: .*the instance a baseURL/,
    )
  })

  it('a list policy’s decision for an absolute URL is cached; a predicate is asked every time', async () => {
    const predicate = vi.fn((u: URL) => u.origin === 'https://api.test')
    const engine = createEngine({
      refresh: async ({ tokens }) => tokens,
      tokens: { accessToken: 'at', tokenType: 'Bearer' },
    })
    const byPredicate = connect(engine, { origins: predicate, baseHint: 'x' })
    await byPredicate.attach({ url: 'https://api.test/a' })
    await byPredicate.attach({ url: 'https://api.test/a' })
    expect(predicate).toHaveBeenCalledTimes(2)
    const byList = connect(engine, { origins: ['https://api.test'], baseHint: 'x' })
    const sent = await byList.attach({ url: 'https://api.test/a' })
    expect(sent?.headers.authorization).toBe('Bearer at')
    expect(await byList.attach({ url: 'https://evil.test/a' })).toBeUndefined()
    expect((await byList.attach({ url: 'https://api.test/a' }))?.headers.authorization).toBe(
      'Bearer at',
    )
  })
})
