import { withReauth } from '@reauth/ky'
import ky from 'ky'
import ky2 from 'ky2'
import type { Harness, TestBody, TestRequest } from './harness.js'

/** ky's `json` / `body` for a contract body. */
function kyBody(body: TestBody | undefined): { json?: unknown; body?: BodyInit } {
  if (!body) return {}
  if (body.kind === 'json') return { json: body.value }
  return { body: body.value }
}

/** The per-call options both majors share; HTTP statuses resolve, everything else rejects. */
function callOptions(options: TestRequest) {
  const body = kyBody(options.body)
  return {
    method: options.method ?? (options.body ? 'post' : 'get'),
    ...body,
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.skip ? { context: { reauth: false } } : {}),
    throwHttpErrors: false,
  }
}

/**
 * ky's own `timeout` (10 s by default) bounds the whole call, the wait on a refresh included.
 * The storms send 1 000 requests, in DPoP mode with a proof signed and checked for every send
 * and replay: on a loaded machine that outlasts 10 s. The timeout is the client's setting, not
 * what the contract tests (packages/ky tests the call-wide timeout itself).
 */
const TIMEOUT = 60_000

const isAbortError = (error: unknown) =>
  error instanceof DOMException && error.name === 'AbortError'

/** ky 1 (`ky`), allowed origin given as `origins`: the harness sends absolute URLs, which `prefixUrl` would not accept. */
const ky1Harness: Harness = {
  name: 'ky 1',
  create(engine, origin) {
    const api = withReauth(ky.create({ timeout: TIMEOUT }), engine, { origins: [origin] })
    return {
      async request(url, options = {}) {
        const response = await api(url, callOptions(options))
        await response.arrayBuffer()
        return { status: response.status }
      },
    }
  },
  isAbortError,
}

/** ky 2 (`ky2`, an npm alias of ky@2), allowed origin taken from its `baseUrl` (absolute inputs ignore it). */
const ky2Harness: Harness = {
  name: 'ky 2',
  create(engine, origin) {
    const api = withReauth(ky2.create({ baseUrl: origin, timeout: TIMEOUT }), engine)
    return {
      async request(url, options = {}) {
        const response = await api(url, callOptions(options))
        await response.arrayBuffer()
        return { status: response.status }
      },
    }
  },
  isAbortError,
}

/** ky under the contract suite: ky 1 and ky 2, both through `withReauth`. */
export const kyHarnesses: Harness[] = [ky1Harness, ky2Harness]
