import { createEngine } from '@reauth/core'
import axios, { type AxiosInstance, type AxiosRequestConfig } from 'axios'
import { expectTypeOf, test } from 'vitest'
import { type AttachReauthOptions, attachReauth, type DetachReauth } from './index.js'

test('attachReauth takes any axios instance and an engine, and returns detach', () => {
  const engine = createEngine({ refresh: async ({ tokens }) => tokens })
  expectTypeOf(attachReauth).parameter(0).toEqualTypeOf<AxiosInstance>()
  expectTypeOf(attachReauth).toBeCallableWith(axios, engine)
  expectTypeOf(attachReauth).toBeCallableWith(axios.create({ baseURL: 'https://a.test' }), engine)
  expectTypeOf(attachReauth).toBeCallableWith(axios, engine, { origins: ['https://a.test'] })
  expectTypeOf(attachReauth).toBeCallableWith(axios, engine, { origins: (url: URL) => !!url })
  expectTypeOf(attachReauth).returns.toEqualTypeOf<DetachReauth>()
  expectTypeOf<DetachReauth>().toEqualTypeOf<() => void>()
  expectTypeOf<AttachReauthOptions>().toHaveProperty('origins')
  // @ts-expect-error an engine is required
  attachReauth(axios)
})

test('the per-request opt-out is a typed axios config flag', () => {
  expectTypeOf<AxiosRequestConfig['reauth']>().toEqualTypeOf<boolean | undefined>()
  expectTypeOf(axios.get).toBeCallableWith('/me', { reauth: false })
  // @ts-expect-error the flag is a boolean
  axios.get('/me', { reauth: 'no' })
})
