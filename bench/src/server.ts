/**
 * The loopback authorization server and protected API the benchmarks run against. It runs in
 * its own process (forked by `control.ts`) so its work does not share the clients' event loop.
 *
 * - `GET /api` answers 200 `{"ok":true}` to a valid bearer token, else 401 with
 *   `WWW-Authenticate: Bearer error="invalid_token"`. `Authorization: DPoP <token>` is taken
 *   like a bearer token when the request carries a `DPoP` proof header; the proof is not
 *   verified (the DPoP overhead cells measure the client's cost of making proofs).
 * - `POST /token` is an RFC 6749 refresh_token grant with rotation: each grant issues a new
 *   refresh token and retires the old one. A retired refresh token presented again is
 *   **counted as reuse** and answered 400 `invalid_grant` (a real server would revoke the whole
 *   session; this one keeps the session so later figures stay comparable).
 * - `/__ctl/*` is the bench's control channel (reset, invalidate, hold the token endpoint,
 *   hold the API's answers, delay 401s until a grant completed, read counters).
 *
 * Access tokens are JWT-shaped (unsigned) with a fractional `exp`, so axios-jwt can read it.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'

export interface ServerConfig {
  /** `expires_in` of issued tokens, enforced by the API; `undefined`: tokens never expire. */
  ttlMs?: number | undefined
  /** Time the token endpoint takes for each grant (a token round trip). */
  tokenDelayMs?: number | undefined
}

export interface LateConfig {
  /** 401s answered at once; the ones after are held until a grant completed. */
  immediate: number
  /** Held 401s are answered this long after the grant's response was written. */
  afterGrantMs: number
}

export interface ServerStats {
  apiRequests: number
  api401: number
  /** Token endpoint calls with grant_type=refresh_token (successful or not). */
  grants: number
  /** Grants that rotated the refresh token. */
  rotations: number
  /** Retired refresh tokens presented again. */
  reuse: number
  /** Grants answered `invalid_grant` (reuse or unknown token). */
  invalidGrant: number
  /** Token requests held right now. */
  heldTokenRequests: number
  /** 401s held right now (late mode). */
  held401: number
  /** `GET /api` requests held right now (`/__ctl/hold-api`), each one pending at its client. */
  heldApi: number
}

/** What the server did, when (ms since tracing started): the storm timeline's data. */
export type TraceEvent =
  | { kind: 'api'; at: number; status: 200 | 401 }
  | { kind: 'grant'; start: number; end: number; ok: boolean; reused: boolean }

export interface TokenResponse {
  access_token: string
  token_type: 'Bearer'
  refresh_token: string
  expires_in?: number
}

function base64url(value: string): string {
  return Buffer.from(value).toString('base64url')
}

const JWT_HEADER = base64url(JSON.stringify({ alg: 'none', typ: 'JWT' }))

let config: ServerConfig = {}
/** Valid access tokens → expiry (ms), `Infinity` when they never expire. */
const access = new Map<string, number>()
let currentRefresh = ''
const retired = new Set<string>()
let serial = 0
let stats: ServerStats = fresh()
let hold = false
const heldTokens: Array<() => void> = []
let late: LateConfig | undefined
let late401Seen = 0
const held401: Array<() => void> = []
/** `GET /api` held unanswered (`/__ctl/hold-api`): the bench's "request in flight". */
let holdApi = false
const heldApi: Array<() => void> = []
let lateTimer: NodeJS.Timeout | undefined
/** Recording for `/__ctl/trace`: its start time and the events so far. */
let trace: { t0: number; events: TraceEvent[] } | undefined
const since = (t0: number) => performance.now() - t0

function fresh(): ServerStats {
  return {
    apiRequests: 0,
    api401: 0,
    grants: 0,
    rotations: 0,
    reuse: 0,
    invalidGrant: 0,
    heldTokenRequests: 0,
    held401: 0,
    heldApi: 0,
  }
}

function issue(): TokenResponse {
  serial++
  const now = Date.now()
  const expiresAt = config.ttlMs === undefined ? Number.POSITIVE_INFINITY : now + config.ttlMs
  const payload: Record<string, unknown> = { sub: 'bench', jti: serial }
  if (config.ttlMs !== undefined) payload.exp = expiresAt / 1000
  const token = `${JWT_HEADER}.${base64url(JSON.stringify(payload))}.sig${serial}`
  access.set(token, expiresAt)
  currentRefresh = `r${serial}.${Math.random().toString(36).slice(2)}`
  const body: TokenResponse = {
    access_token: token,
    token_type: 'Bearer',
    refresh_token: currentRefresh,
  }
  if (config.ttlMs !== undefined) body.expires_in = config.ttlMs / 1000
  return body
}

function json(res: ServerResponse, status: number, body: unknown, headers = {}): void {
  const text = JSON.stringify(body)
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...headers,
  })
  res.end(text)
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
    req.on('error', reject)
  })
}

function parseForm(text: string, type: string | undefined): Record<string, string> {
  if (type?.includes('json')) {
    try {
      return JSON.parse(text) as Record<string, string>
    } catch {
      return {}
    }
  }
  return Object.fromEntries(new URLSearchParams(text))
}

function releaseLate(): void {
  if (lateTimer) clearTimeout(lateTimer)
  lateTimer = undefined
  for (const send of held401.splice(0)) send()
  stats.held401 = 0
}

function releaseApi(): void {
  holdApi = false
  for (const answer of heldApi.splice(0)) answer()
  stats.heldApi = 0
}

function api(req: IncomingMessage, res: ServerResponse): void {
  stats.apiRequests++
  if (holdApi) {
    // Answered (as usual, with the token checked then) when the hold is lifted.
    heldApi.push(() => answerApi(req, res))
    stats.heldApi = heldApi.length
    return
  }
  answerApi(req, res)
}

function answerApi(req: IncomingMessage, res: ServerResponse): void {
  const header = req.headers.authorization
  const token = header?.startsWith('Bearer ')
    ? header.slice(7)
    : header?.startsWith('DPoP ') && typeof req.headers.dpop === 'string'
      ? header.slice(5)
      : undefined
  const expiresAt = token === undefined ? undefined : access.get(token)
  if (expiresAt !== undefined && Date.now() < expiresAt) {
    json(res, 200, { ok: true })
    if (trace) trace.events.push({ kind: 'api', at: since(trace.t0), status: 200 })
    return
  }
  stats.api401++
  const send = () => {
    json(
      res,
      401,
      { error: 'invalid_token' },
      { 'www-authenticate': 'Bearer error="invalid_token"' },
    )
    if (trace) trace.events.push({ kind: 'api', at: since(trace.t0), status: 401 })
  }
  if (late && late401Seen++ >= late.immediate) {
    held401.push(send)
    stats.held401 = held401.length
    // Bounded: a client that never refreshes still gets its answer.
    lateTimer ??= setTimeout(releaseLate, 5_000)
    return
  }
  send()
}

async function token(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const form = parseForm(await readBody(req), req.headers['content-type'])
  if (form.grant_type !== 'refresh_token') {
    json(res, 400, { error: 'unsupported_grant_type' })
    return
  }
  stats.grants++
  const traced = trace
  const start = traced ? since(traced.t0) : 0
  const record = (ok: boolean, reused: boolean) => {
    if (traced && trace === traced)
      traced.events.push({ kind: 'grant', start, end: since(traced.t0), ok, reused })
  }
  if (hold) {
    stats.heldTokenRequests++
    await new Promise<void>((resolve) => heldTokens.push(resolve))
    stats.heldTokenRequests--
  }
  if (config.tokenDelayMs) await new Promise((resolve) => setTimeout(resolve, config.tokenDelayMs))
  const presented = String(form.refresh_token ?? '')
  if (presented !== currentRefresh) {
    const reused = retired.has(presented)
    if (reused) stats.reuse++
    stats.invalidGrant++
    json(res, 400, { error: 'invalid_grant', error_description: 'refresh token not current' })
    record(false, reused)
    return
  }
  retired.add(presented)
  stats.rotations++
  json(res, 200, issue())
  record(true, false)
  if (late && held401.length > 0) {
    const afterGrantMs = late.afterGrantMs
    late = undefined
    setTimeout(releaseLate, afterGrantMs)
  }
}

async function control(path: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const text = await readBody(req)
  const body = text ? (JSON.parse(text) as Record<string, unknown>) : {}
  switch (path) {
    case '/__ctl/reset': {
      releaseLate()
      releaseApi()
      for (const release of heldTokens.splice(0)) release()
      hold = false
      late = undefined
      late401Seen = 0
      config = body as ServerConfig
      access.clear()
      retired.clear()
      stats = fresh()
      json(res, 200, issue())
      return
    }
    case '/__ctl/invalidate':
      // Every access token issued so far stops working (as if it expired server-side).
      access.clear()
      json(res, 200, {})
      return
    case '/__ctl/hold':
      hold = body.on === true
      if (!hold) for (const release of heldTokens.splice(0)) release()
      json(res, 200, {})
      return
    case '/__ctl/hold-api':
      if (body.on === true) holdApi = true
      else releaseApi()
      json(res, 200, {})
      return
    case '/__ctl/late':
      late = body as unknown as LateConfig
      late401Seen = 0
      json(res, 200, {})
      return
    case '/__ctl/stats':
      json(res, 200, stats)
      return
    case '/__ctl/trace': {
      // {on: true} starts recording; {on: false} stops and answers the events.
      const events = trace?.events ?? []
      trace = body.on === true ? { t0: performance.now(), events: [] } : undefined
      json(res, 200, { events })
      return
    }
    default:
      json(res, 404, {})
  }
}

const server = createServer((req, res) => {
  const path = (req.url ?? '/').split('?')[0] ?? '/'
  if (path === '/api') {
    // Drain the request body (none is sent) before answering.
    req.resume()
    api(req, res)
    return
  }
  const handle =
    path === '/token' && req.method === 'POST'
      ? token(req, res)
      : path.startsWith('/__ctl/')
        ? control(path, req, res)
        : Promise.resolve(json(res, 404, {}))
  handle.catch(() => {
    if (!res.headersSent) json(res, 500, { error: 'server_error' })
  })
})
server.keepAliveTimeout = 60_000
server.headersTimeout = 65_000
server.requestTimeout = 0
server.maxRequestsPerSocket = 0

// A deep accept queue: the memory scenario opens 10 000 connections at once.
server.listen({ port: 0, host: '127.0.0.1', backlog: 16_384 }, () => {
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : 0
  process.send?.({ port })
})

// The parent ends us; never outlive it.
process.on('disconnect', () => process.exit(0))
