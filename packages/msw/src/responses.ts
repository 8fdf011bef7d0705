import { ReauthOptionsError } from '@reauth/core'
import { HttpResponse } from 'msw'
import type { TokenOutcome } from './types.js'

/** RFC 6749 §5.1: token responses must not be cached. */
export const NO_STORE = { 'Cache-Control': 'no-store', Pragma: 'no-cache' } as const

/**
 * An RFC 6749 §5.2 error. `invalid_client` is 401 with a `WWW-Authenticate: Basic` challenge
 * (§5.2 requires it when the client authenticated with the header; harmless otherwise).
 */
export function oauthError(
  error: string,
  description: string | undefined,
  realm: string,
  status = error === 'invalid_client' ? 401 : 400,
): Response {
  const headers: Record<string, string> = { ...NO_STORE }
  if (status === 401)
    headers['WWW-Authenticate'] = `Basic realm="${realm.replace(/[\\"]/g, '\\$&')}"`
  const body: { error: string; error_description?: string } = { error }
  if (description !== undefined) body.error_description = description
  return HttpResponse.json(body, { status, headers })
}

const REASONS: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  408: 'Request Timeout',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
}

function htmlPage(status: number): string {
  const title = `${status} ${REASONS[status] ?? 'Error'}`
  return `<!doctype html><html><head><title>${title}</title></head><body><h1>${title}</h1></body></html>`
}

/** The response for an injected outcome (any but `ok`, which is a normal grant). */
export function renderFault(
  outcome: Exclude<TokenOutcome, { type: 'ok' }>,
  realm: string,
): Response {
  switch (outcome.type) {
    case 'network-error':
      return HttpResponse.error()
    case 'oauth-error':
      return oauthError(outcome.error, outcome.description, realm, outcome.status)
    case 'status': {
      const headers: Record<string, string> = {
        'Content-Type':
          outcome.contentType ??
          (outcome.body === undefined ? 'text/html; charset=utf-8' : 'text/plain; charset=utf-8'),
      }
      if (outcome.retryAfter !== undefined) headers['Retry-After'] = String(outcome.retryAfter)
      return new HttpResponse(outcome.body ?? htmlPage(outcome.status), {
        status: outcome.status,
        headers,
      })
    }
    case 'json':
      // Any value, even one HttpResponse.json would not type: that is the point of the fault.
      return new HttpResponse(JSON.stringify(outcome.json), {
        status: outcome.status ?? 200,
        headers: { 'Content-Type': 'application/json', ...NO_STORE },
      })
    case 'body':
      return new HttpResponse(outcome.body, {
        status: outcome.status ?? 200,
        headers: { 'Content-Type': outcome.contentType ?? 'application/json', ...NO_STORE },
      })
  }
}

function invalid(message: string): never {
  throw new ReauthOptionsError(`enqueue(): ${message}`)
}

function checkStatus(status: number | undefined, type: string): void {
  if (status === undefined) return
  if (!Number.isInteger(status) || status < 200 || status > 599) {
    invalid(`"status" of a "${type}" outcome must be an integer from 200 to 599`)
  }
}

/** Reject a malformed outcome when it is queued, not when a request later meets it. */
export function validateOutcome(outcome: TokenOutcome): void {
  if (typeof outcome !== 'object' || outcome === null) invalid('an outcome must be an object')
  switch (outcome.type) {
    case 'network-error':
      return
    case 'oauth-error':
      if (typeof outcome.error !== 'string' || outcome.error === '') {
        invalid('"error" of an "oauth-error" outcome must be a non-empty string')
      }
      checkStatus(outcome.status, outcome.type)
      return
    case 'status':
      if (outcome.status === undefined) invalid('a "status" outcome needs "status"')
      if (
        outcome.retryAfter !== undefined &&
        !(Number.isInteger(outcome.retryAfter) && outcome.retryAfter >= 0)
      ) {
        invalid('"retryAfter" must be a non-negative integer (seconds)')
      }
      checkStatus(outcome.status, outcome.type)
      return
    case 'json':
      checkStatus(outcome.status, outcome.type)
      return
    case 'body':
      if (typeof outcome.body !== 'string') invalid('"body" of a "body" outcome must be a string')
      checkStatus(outcome.status, outcome.type)
      return
    case 'ok':
      if (outcome.expiresIn !== undefined && !Number.isFinite(outcome.expiresIn)) {
        invalid('"expiresIn" of an "ok" outcome must be a finite number (seconds)')
      }
      return
    default:
      invalid(`unknown outcome type ${JSON.stringify((outcome as { type: unknown }).type)}`)
  }
}
