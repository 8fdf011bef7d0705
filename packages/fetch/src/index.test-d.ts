import { createEngine } from '@reauth/core'
import { expectTypeOf, test } from 'vitest'
import { createFetch, type ReauthFetch } from './index.js'

test('createFetch returns a function with fetch’s signature', () => {
  const engine = createEngine({ refresh: async ({ tokens }) => tokens })
  const api = createFetch(engine, { origins: ['https://api.example.test'] })
  expectTypeOf(api).toEqualTypeOf<ReauthFetch>()
  expectTypeOf(api).parameter(0).toEqualTypeOf<RequestInfo | URL>()
  expectTypeOf(api).returns.toEqualTypeOf<Promise<Response>>()
  // assignable where a fetch is expected
  expectTypeOf(api).toMatchTypeOf<
    (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>
  >()
  expectTypeOf(api).toBeCallableWith('https://api.example.test', { reauth: false })
})
