import type { Engine } from '@reauth/core'
import { axiosHarnesses } from './harness-axios.js'
import { fetchHarness } from './harness-fetch.js'
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

export { fetchHarness }

export const harnesses: Harness[] = [fetchHarness, ...axiosHarnesses, ...kyHarnesses]
