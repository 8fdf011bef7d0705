import { describe, expectTypeOf, it } from 'vitest'
import {
  type AuthFailure,
  assertEngine,
  type Connection,
  type Credentials,
  connect,
  createOriginMatcher,
  isEngine,
  type OriginMatcher,
  run,
} from './adapter.js'
import { createEngine, type Engine, type RefreshFunction } from './index.js'

const refresh: RefreshFunction = async ({ tokens }) => tokens

describe('@reauth/core/adapter types', () => {
  it('connect gives a Connection with attach and one response-side step', () => {
    const reauth = connect(createEngine({ refresh }), { origins: ['https://a'], baseHint: 'x' })
    expectTypeOf(reauth).toEqualTypeOf<Connection>()
    expectTypeOf(reauth.attach({ url: 'https://a/x' })).toEqualTypeOf<
      Promise<Credentials | undefined>
    >()
    expectTypeOf<Credentials['headers']>().toEqualTypeOf<Readonly<Record<string, string>>>()
    const failure = {} as AuthFailure<number>
    expectTypeOf(reauth.respond(undefined, failure.response, () => failure)).toEqualTypeOf<
      Promise<number> | undefined
    >()
    expectTypeOf(reauth.allowed).toEqualTypeOf<OriginMatcher>()
    expectTypeOf(createOriginMatcher([])).toEqualTypeOf<OriginMatcher>()
  })

  it('run sends with credentials computed per send and resolves with the client result', () => {
    const reauth = {} as Connection
    const result = run(reauth, {
      url: 'https://a',
      send: async (sent: Credentials | undefined) => ({ status: 200, sent }),
      response: (r) => ({ status: r.status, headers: new Headers() }),
    })
    expectTypeOf(result).toEqualTypeOf<Promise<{ status: number; sent: Credentials | undefined }>>()
  })

  it('isEngine and assertEngine narrow', () => {
    const value: unknown = undefined
    if (isEngine(value)) expectTypeOf(value).toEqualTypeOf<Engine>()
    assertEngine(value)
    expectTypeOf(value).toEqualTypeOf<Engine>()
  })
})
