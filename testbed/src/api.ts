import { createHash, createPublicKey, type JsonWebKey, verify } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { API_CLIENT } from './provider.js'

export interface ApiCounters {
  /** Requests received. */
  requests: number
  /** Requests answered 200. */
  ok: number
  /** Requests answered 401 (no, expired or revoked token). */
  unauthorized: number
  /** Requests answered 503 because the provider could not be asked. */
  unavailable: number
  /** Requests answered 401 because the token was for another audience (or none). */
  wrongAudience: number
}

/** Options of {@link startApi}. */
export interface ApiOptions {
  /** The provider's issuer. */
  issuer: string
  /**
   * This API's resource indicator (RFC 8707): only access tokens whose `aud` is (or includes)
   * it are accepted. Default: any audience.
   */
  audience?: string
}

function base64urlJson(segment: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'))
    return typeof value === 'object' && value !== null
      ? (value as Record<string, unknown>)
      : undefined
  } catch {
    return undefined
  }
}

function audiences(aud: unknown): string[] {
  if (typeof aud === 'string') return [aud]
  return Array.isArray(aud) ? aud.filter((a): a is string => typeof a === 'string') : []
}

export interface RunningApi {
  readonly origin: string
  readonly counters: ApiCounters
  stop(): Promise<void>
}

/**
 * A protected API on 127.0.0.1. An opaque Bearer token is checked with the provider's
 * introspection endpoint (RFC 7662); a JWT access token (RFC 9068) locally, against the
 * provider's JWKS (RS256 signature, `iss`, `exp`). With `audience` it is one resource server
 * (RFC 8707): a token for another audience, or none, is answered 401 `invalid_token`.
 * `GET /orders` answers JSON; `POST /echo` answers the SHA-256 of the body it received, so
 * replays can be checked byte for byte.
 */
export async function startApi(options: ApiOptions): Promise<RunningApi> {
  const counters: ApiCounters = {
    requests: 0,
    ok: 0,
    unauthorized: 0,
    unavailable: 0,
    wrongAudience: 0,
  }
  const basic = `Basic ${Buffer.from(`${API_CLIENT.id}:${API_CLIENT.secret}`).toString('base64')}`
  let keys: Promise<Array<JsonWebKey & { kid?: string }>> | undefined

  /** What the token says about itself once checked: `undefined` when it is not valid. */
  type Checked = { aud: string[] } | undefined

  async function introspect(token: string): Promise<Checked> {
    const response = await fetch(`${options.issuer}/token/introspection`, {
      method: 'POST',
      headers: { authorization: basic },
      body: new URLSearchParams({ token, token_type_hint: 'access_token' }),
    })
    if (!response.ok) throw new Error(`introspection answered ${response.status}`)
    const body = (await response.json()) as { active?: boolean; aud?: unknown }
    return body.active === true ? { aud: audiences(body.aud) } : undefined
  }

  async function verifyJwt(token: string): Promise<Checked> {
    const [header = '', payload = '', signature = ''] = token.split('.')
    const protectedHeader = base64urlJson(header)
    const claims = base64urlJson(payload)
    if (!protectedHeader || !claims || protectedHeader.alg !== 'RS256') return undefined
    if (!keys) {
      const loading = fetch(`${options.issuer}/jwks`)
        .then(
          (response) => response.json() as Promise<{ keys: Array<JsonWebKey & { kid?: string }> }>,
        )
        .then((jwks) => jwks.keys)
      keys = loading
      // A failed load is tried again on the next request.
      loading.catch(() => {
        if (keys === loading) keys = undefined
      })
    }
    const jwk = (await keys).find((key) => key.kid === protectedHeader.kid)
    if (!jwk) return undefined
    const valid = verify(
      'RSA-SHA256',
      Buffer.from(`${header}.${payload}`),
      createPublicKey({ key: jwk, format: 'jwk' }),
      Buffer.from(signature, 'base64url'),
    )
    if (!valid || claims.iss !== options.issuer) return undefined
    if (typeof claims.exp !== 'number' || claims.exp * 1000 <= Date.now()) return undefined
    return { aud: audiences(claims.aud) }
  }

  function check(token: string): Promise<Checked> {
    return token.split('.').length === 3 ? verifyJwt(token) : introspect(token)
  }

  function send(res: ServerResponse, status: number, body: unknown, headers = {}) {
    res.writeHead(status, { 'content-type': 'application/json', ...headers })
    res.end(JSON.stringify(body))
  }

  async function handle(req: IncomingMessage, res: ServerResponse) {
    counters.requests++
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    const header = req.headers.authorization
    const token = /^Bearer (.+)$/i.exec(header ?? '')?.[1]
    if (!token) {
      counters.unauthorized++
      return send(res, 401, { error: 'unauthorized' }, { 'www-authenticate': 'Bearer realm="api"' })
    }
    let checked: Checked
    try {
      checked = await check(token)
    } catch {
      counters.unavailable++
      return send(res, 503, { error: 'temporarily_unavailable' })
    }
    if (checked && options.audience !== undefined && !checked.aud.includes(options.audience)) {
      counters.unauthorized++
      counters.wrongAudience++
      return send(
        res,
        401,
        { error: 'invalid_token', error_description: 'the token is for another audience' },
        { 'www-authenticate': 'Bearer realm="api", error="invalid_token"' },
      )
    }
    if (!checked) {
      counters.unauthorized++
      return send(
        res,
        401,
        { error: 'invalid_token' },
        {
          'www-authenticate': 'Bearer realm="api", error="invalid_token"',
        },
      )
    }
    counters.ok++
    if (req.method === 'POST' && req.url === '/echo') {
      const body = Buffer.concat(chunks)
      return send(res, 200, {
        sha256: createHash('sha256').update(body).digest('hex'),
        contentType: req.headers['content-type'] ?? null,
      })
    }
    return send(res, 200, { orders: [{ id: 1 }, { id: 2 }] })
  }

  const server = createServer((req, res) => {
    handle(req, res).catch(() => send(res, 500, { error: 'server_error' }))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    origin: `http://127.0.0.1:${port}`,
    counters,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
