import type { Engine } from '@reauth/core'
import { createFetch } from '@reauth/fetch'
import { axiosHarnesses } from './harness-axios.js'
import { kyHarnesses } from './harness-ky.js'

/** A body the contract suite sends, in each client's own idiom. */
export type TestBody =
  | { kind: 'json'; value: unknown }
  | { kind: 'urlencoded'; value: URLSearchParams }
  | { kind: 'multipart'; value: FormData }

export interface TestRequest {
  method?: string
  body?: TestBody
  signal?: AbortSignal
  /** the client's per-request opt-out */
  skip?: boolean
}

/** What a request ended with, as the client reports an HTTP status (errors other than HTTP status are thrown). */
export interface TestResult {
  status: number
}

export interface TestClient {
  request(url: string, options?: TestRequest): Promise<TestResult>
}

/** One adapter under the contract suite. axios and ky add their entries here. */
export interface Harness {
  name: string
  /** `origin` is the API's origin, the one allowed to receive tokens. */
  create(engine: Engine, origin: string): TestClient
  /** Is `error` the client's usual abort error? */
  isAbortError(error: unknown): boolean
}

function fetchBody(body: TestBody | undefined): { body?: BodyInit; headers?: HeadersInit } {
  if (!body) return {}
  if (body.kind === 'json') {
    return { body: JSON.stringify(body.value), headers: { 'content-type': 'application/json' } }
  }
  return { body: body.value }
}

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

export const harnesses: Harness[] = [fetchHarness, ...axiosHarnesses, ...kyHarnesses]
