import { type Engine, type OriginPolicy, ReauthOptionsError } from '@reauth/core'
import {
  type Credentials,
  connect,
  pageOrigin,
  type RunRequest,
  run,
  unreplayableBody,
} from '@reauth/core/adapter'

/** `RequestInit` plus reauth's per-request option. */
export interface ReauthRequestInit extends RequestInit {
  /** `false`: send this request untouched (no token, no refresh, no replay). */
  reauth?: boolean
}

/** A function with `fetch`'s signature that keeps requests authorised. */
export type ReauthFetch = (input: RequestInfo | URL, init?: ReauthRequestInit) => Promise<Response>

/** Options of {@link createFetch}. */
export interface CreateFetchOptions {
  /** The underlying `fetch`. Default: `globalThis.fetch`, looked up at each call (so MSW and polyfills apply). */
  fetch?: typeof fetch
  /**
   * Origins that receive the token. Default: the engine's `origins`, else the page's own
   * origin in a browser. Required on servers when the engine has none.
   */
  origins?: OriginPolicy
}

const noop = () => {}

/**
 * Wrap `fetch` over an engine: same signature, same `Response`. The token goes only to
 * allowed origins; a 401 refreshes once for all concurrent callers and the request is
 * replayed with its body byte-identical. A `ReadableStream` body cannot be replayed: the
 * caller gets the 401 and the engine logs why.
 *
 * @example
 * import { createEngine } from '@reauth/core'
 * import { createFetch } from '@reauth/fetch'
 *
 * const engine = createEngine({ refresh, tokens })
 * const api = createFetch(engine, { origins: ['https://api.example.com'] })
 * const me = await (await api('https://api.example.com/me')).json()
 */
export function createFetch(engine: Engine, options: CreateFetchOptions = {}): ReauthFetch {
  if (typeof options !== 'object' || options === null) {
    throw new ReauthOptionsError('"options" must be an object')
  }
  if (options.fetch !== undefined && typeof options.fetch !== 'function') {
    throw new ReauthOptionsError('"fetch" must be a function')
  }
  const reauth = connect(engine, {
    origins: options.origins,
    base: pageOrigin(),
    baseHint: 'a page origin (in a browser)',
  })

  return async function reauthFetch(input, init) {
    const send = options.fetch ?? globalThis.fetch
    const { reauth: optIn, ...rest } = init ?? {}
    const skip = optIn === false
    // Core resolves a relative one as the page's fetch will (against the document's base URL).
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : undefined
    if (url !== undefined && resendable(rest.body)) {
      // The common case (a URL and a body that can be passed again as is): no Request to
      // build, the caller's init is sent again with the headers set, byte for byte.
      // An object literal with all its fields (no spread): every call shares one shape.
      const call: RunRequest<Response> = {
        response: asIs,
        discard,
        url,
        method: rest.method ?? 'GET',
        skip,
        hasAuthorization:
          hasHeader(rest.headers, 'authorization') || hasHeader(rest.headers, 'dpop'),
        signal: rest.signal,
        send(sent) {
          if (sent === undefined) return send(input, rest)
          return send(input, { ...rest, headers: withCredentials(new Headers(rest.headers), sent) })
        },
      }
      // A refresh it would wait for is running: park it (only this call's description is
      // held) and run it when the refresh gave it a token. A refresh failure or the caller's
      // abort rejects it as `attach` would have.
      const hold = reauth.hold(call)
      return hold === undefined ? run(reauth, call) : hold.then((pass) => run(reauth, call, pass))
    }
    const request = new Request(input, rest)
    // A stream given as the body is read once by the first send: it cannot be replayed,
    // and teeing it would buffer an upload of any size. Everything else (FormData, a Request
    // input) is cloned before the first send, so the replay sends the same bytes.
    const oneShot = unreplayableBody(rest.body)
    const spare = request.body && !oneShot ? request.clone() : undefined
    let sends = 0
    return run<Response>(reauth, {
      response: asIs,
      discard,
      url: request.url,
      method: request.method,
      skip,
      hasAuthorization: request.headers.has('authorization') || request.headers.has('dpop'),
      // The caller's own signal (Request derives a new one): it is how the engine recognises
      // its refresh function's own requests.
      signal: rest.signal ?? (input instanceof Request ? input.signal : request.signal),
      send(sent) {
        const source = sends++ === 0 ? request : (spare ?? request)
        // Our own Request: its headers are ours to set (fetch copies the request when called).
        if (sent !== undefined) withCredentials(source.headers, sent)
        return send(source)
      },
      replayable: () => oneShot,
    })
  }
}

const asIs = (response: Response) => response

/** A response that will not reach the caller: release its body. */
function discard(response: Response): void {
  response.body?.cancel().catch(noop)
}

/** Set the headers reauth computed for this send. */
function withCredentials(headers: Headers, sent: Credentials): Headers {
  for (const [name, value] of Object.entries(sent.headers)) headers.set(name, value)
  return headers
}

/** Does a `HeadersInit` name `name` (lower case)? Without building a `Headers` for the common shapes. */
function hasHeader(init: HeadersInit | undefined, name: string): boolean {
  if (init === undefined || init === null) return false
  if (typeof (init as Headers).has === 'function') return (init as Headers).has(name)
  if (Array.isArray(init)) return init.some(([key]) => String(key).toLowerCase() === name)
  return Object.keys(init).some((key) => key.toLowerCase() === name)
}

/**
 * A body fetch can be given twice and will send the same bytes: none, a string,
 * URLSearchParams, a Blob or a buffer. (FormData gets a new multipart boundary each time,
 * and a stream is read once.)
 */
function resendable(body: BodyInit | null | undefined): boolean {
  return (
    body === undefined ||
    body === null ||
    typeof body === 'string' ||
    body instanceof URLSearchParams ||
    (typeof Blob !== 'undefined' && body instanceof Blob) ||
    body instanceof ArrayBuffer ||
    ArrayBuffer.isView(body)
  )
}
