/** The fault table shared by the fault-matrix tests. */
import type { TokenOutcome } from '@reauth/msw'

export interface Fault {
  name: string
  outcome: TokenOutcome
  /** Fields the RefreshError must carry. */
  fields: { status?: number; field?: string; retryAfter?: number }
  /** What the message must say. */
  message: RegExp
  /** The server granted and rotated before the response failed a check: a new refresh token must be kept. */
  rotated?: boolean
}

/** A body far larger than any token response: 4 MiB of JSON that is not a token response. */
const huge = JSON.stringify({ padding: 'x'.repeat(4 * 1024 * 1024) })

export const faults: Fault[] = [
  {
    name: '500',
    outcome: { type: 'status', status: 500 },
    fields: { status: 500 },
    message: /HTTP 500/,
  },
  {
    name: '502 from a proxy',
    outcome: { type: 'status', status: 502 },
    fields: { status: 502 },
    message: /HTTP 502/,
  },
  {
    name: '503 with Retry-After',
    outcome: { type: 'status', status: 503, retryAfter: 7 },
    fields: { status: 503, retryAfter: 7_000 },
    message: /HTTP 503/,
  },
  {
    name: '429 with Retry-After',
    outcome: { type: 'status', status: 429, retryAfter: 3 },
    fields: { status: 429, retryAfter: 3_000 },
    message: /HTTP 429/,
  },
  {
    name: 'connection reset',
    outcome: { type: 'network-error' },
    fields: {},
    message: /TypeError/,
  },
  {
    name: 'invalid JSON',
    outcome: { type: 'body', body: '{"access_token": "trunc' },
    fields: { field: 'body' },
    message: /"body"/,
  },
  {
    name: 'an HTML page with status 200 (captive portal)',
    outcome: {
      type: 'body',
      body: '<!doctype html><title>Sign in to Wi-Fi</title>',
      contentType: 'text/html',
    },
    fields: { field: 'body' },
    message: /"body"/,
  },
  {
    name: 'a body without access_token',
    outcome: { type: 'json', json: { token_type: 'Bearer', expires_in: 60 } },
    fields: { field: 'access_token' },
    message: /"access_token"/,
  },
  {
    name: 'expires_in negative',
    outcome: { type: 'json', json: { access_token: 'neg', token_type: 'Bearer', expires_in: -1 } },
    fields: { field: 'expires_in' },
    message: /"expires_in"/,
  },
  {
    name: 'expires_in a non-numeric string',
    outcome: {
      type: 'json',
      json: { access_token: 'str', token_type: 'Bearer', expires_in: 'an hour' },
    },
    fields: { field: 'expires_in' },
    message: /"expires_in"/,
  },
  {
    name: 'expires_in absurdly large',
    outcome: {
      type: 'json',
      json: { access_token: 'big', token_type: 'Bearer', expires_in: 1e15 },
    },
    fields: { field: 'expires_in' },
    message: /"expires_in"/,
  },
  {
    name: 'an unknown token_type',
    outcome: { type: 'json', json: { access_token: 'mac', token_type: 'mac', expires_in: 60 } },
    fields: { field: 'token_type' },
    message: /"token_type"/,
  },
  {
    name: 'a multi-megabyte body',
    outcome: { type: 'body', body: huge },
    fields: { field: 'access_token' },
    message: /"access_token"/,
  },
  // The server granted and rotated, then something else in its 200 fails a check: the new
  // refresh token must reach the store, or the next refresh presents a spent one (reuse).
  ...(
    [
      ['expires_in a non-numeric string', { expires_in: 'an hour' }, 'expires_in'],
      ['expires_in negative', { expires_in: -1 }, 'expires_in'],
      ['expires_in absurd', { expires_in: 1e10 }, 'expires_in'],
      ['token_type missing', { token_type: null }, 'token_type'],
      ['an unknown token_type', { token_type: 'mac' }, 'token_type'],
      ['an empty access_token', { access_token: '' }, 'access_token'],
    ] as const
  ).map(
    ([what, body, field]): Fault => ({
      name: `a rotating grant answers with ${what}`,
      outcome: { type: 'ok', body },
      fields: { field },
      message: new RegExp(`"${field}"`),
      rotated: true,
    }),
  ),
]
