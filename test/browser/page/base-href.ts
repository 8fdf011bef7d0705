/**
 * The page of the `<base href>` test: one engine with a token, and fetch, axios (xhr and fetch
 * adapters) and ky on it, each with the defaults a user would write for "my own origin".
 * Each call uses a relative URL; the page's `<base href>` may point it somewhere else.
 */
import { attachReauth } from '@reauth/axios'
import { createEngine } from '@reauth/core'
import { createFetch } from '@reauth/fetch'
import { withReauth } from '@reauth/ky'
import axios from 'axios'
import ky from 'ky'

declare global {
  interface Window {
    baseHref: { run(): Promise<Record<string, string>> }
  }
}

const engine = createEngine({
  tokens: { accessToken: 'at-base-href-SECRET', tokenType: 'Bearer', refreshToken: 'rt-x' },
  refresh: async () => {
    throw new Error('no refresh in this test')
  },
})

async function outcome(call: () => Promise<unknown>): Promise<string> {
  try {
    await call()
    return 'ok'
  } catch (error) {
    return (error as Error).name
  }
}

window.baseHref = {
  async run() {
    const api = createFetch(engine)
    const xhr = axios.create({ baseURL: '/api', adapter: 'xhr' })
    attachReauth(xhr, engine)
    const viaFetch = axios.create({ baseURL: '/api', adapter: 'fetch' })
    attachReauth(viaFetch, engine)
    const kyApi = withReauth(ky.create({ prefixUrl: '/api', retry: 0 }), engine)
    return {
      fetch: await outcome(() => api('api/fetch')),
      'axios xhr': await outcome(() => xhr.get('/xhr')),
      'axios fetch': await outcome(() => viaFetch.get('/axios-fetch')),
      ky: await outcome(() => kyApi.get('ky')),
    }
  },
}
