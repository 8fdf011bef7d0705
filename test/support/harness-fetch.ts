import { createFetch } from '@reauth/fetch'
import type { Harness, TestBody } from './harness.js'

// Its own module (no axios, no ky) so the workerd bundle of the runtime scenarios stays small.

function fetchBody(body: TestBody | undefined): { body?: BodyInit; headers?: HeadersInit } {
  if (!body) return {}
  if (body.kind === 'json') {
    return { body: JSON.stringify(body.value), headers: { 'content-type': 'application/json' } }
  }
  return { body: body.value }
}

/** @reauth/fetch under the contract suite. */
export const fetchHarness: Harness = {
  name: 'fetch',
  create(engine, origin) {
    const api = createFetch(engine, { origins: [origin] })
    return {
      async request(url, options = {}) {
        const { body, headers } = fetchBody(options.body)
        const response = await api(url, {
          method: options.method ?? (body ? 'POST' : 'GET'),
          ...(body === undefined ? {} : { body }),
          ...(headers === undefined ? {} : { headers }),
          ...(options.signal ? { signal: options.signal } : {}),
          ...(options.skip ? { reauth: false } : {}),
        })
        await response.arrayBuffer()
        return { status: response.status }
      },
    }
  },
  isAbortError: (error) => error instanceof DOMException && error.name === 'AbortError',
}
