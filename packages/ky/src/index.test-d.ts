import { createEngine } from '@reauth/core'
import ky, { type KyInstance, type Options } from 'ky'
import { expectTypeOf, test } from 'vitest'
import { type ReauthContext, type ReauthHooks, reauthHooks, withReauth } from './index.js'

const engine = createEngine({ refresh: async ({ tokens }) => tokens })

test('withReauth returns the instance type it was given', () => {
  const api = withReauth(ky.create({ prefixUrl: 'https://api.example.test' }), engine)
  expectTypeOf(api).toEqualTypeOf<KyInstance>()
  expectTypeOf(withReauth(ky, engine, { origins: ['https://api.example.test'] })).toEqualTypeOf<
    typeof ky
  >()
  // @ts-expect-error origins is a list or a predicate
  withReauth(ky, engine, { origins: 'https://api.example.test' })
  // @ts-expect-error an engine is required
  withReauth(ky)
})

test('reauthHooks fit ky’s hooks option', () => {
  const hooks = reauthHooks(ky, engine)
  expectTypeOf(hooks).toEqualTypeOf<ReauthHooks>()
  expectTypeOf(hooks.beforeRequest).toMatchTypeOf<
    NonNullable<NonNullable<Options['hooks']>['beforeRequest']>
  >()
  expectTypeOf(hooks.afterResponse).toMatchTypeOf<
    NonNullable<NonNullable<Options['hooks']>['afterResponse']>
  >()
  ky.create({ prefixUrl: 'https://api.example.test', hooks })
})

test('the opt-out is ky’s own context option', () => {
  const context: ReauthContext = { reauth: false }
  const kyContext: Options['context'] = { ...context }
  expectTypeOf(kyContext).not.toBeNever()
  const api = withReauth(ky.create({ prefixUrl: 'https://api.example.test' }), engine)
  expectTypeOf(api.get).toBeCallableWith('health', { context: { reauth: false } })
})
