import { attachReauth } from '@reauth/axios'
import axios, { type AxiosRequestConfig } from 'axios'
import type { Harness, TestBody } from './harness.js'

function axiosData(body: TestBody | undefined): unknown {
  // Each kind in axios's own idiom: a plain object (axios serialises JSON), URLSearchParams, FormData.
  return body?.value
}

function axiosHarness(adapter: 'http' | 'fetch'): Harness {
  return {
    name: `axios (${adapter} adapter)`,
    create(engine, origin) {
      const instance = axios.create({ baseURL: origin, adapter })
      attachReauth(instance, engine)
      return {
        async request(url, options = {}) {
          const data = axiosData(options.body)
          const config: AxiosRequestConfig = {
            url,
            method: options.method ?? (data === undefined ? 'GET' : 'POST'),
          }
          if (data !== undefined) config.data = data
          if (options.signal) config.signal = options.signal
          if (options.skip) config.reauth = false
          try {
            const response = await instance.request(config)
            return { status: response.status }
          } catch (error) {
            // axios rejects non-2xx responses: report their status like any other client.
            if (axios.isAxiosError(error) && error.response)
              return { status: error.response.status }
            throw error
          }
        },
      }
    },
    isAbortError: (error) => axios.isCancel(error),
  }
}

/** axios under the contract suite: its Node `http` adapter and its `fetch` adapter. */
export const axiosHarnesses: Harness[] = [axiosHarness('http'), axiosHarness('fetch')]
