import { createHash } from 'node:crypto'
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
}

export interface RunningApi {
  readonly origin: string
  readonly counters: ApiCounters
  stop(): Promise<void>
}

/**
 * A protected API on 127.0.0.1 that checks every Bearer token with the provider's
 * introspection endpoint (RFC 7662). `GET /orders` answers JSON; `POST /echo` answers the
 * SHA-256 of the body it received, so replays can be checked byte for byte.
 */
export async function startApi(options: { issuer: string }): Promise<RunningApi> {
  const counters: ApiCounters = { requests: 0, ok: 0, unauthorized: 0, unavailable: 0 }
  const basic = `Basic ${Buffer.from(`${API_CLIENT.id}:${API_CLIENT.secret}`).toString('base64')}`

  async function active(token: string): Promise<boolean> {
    const response = await fetch(`${options.issuer}/token/introspection`, {
      method: 'POST',
      headers: { authorization: basic },
      body: new URLSearchParams({ token, token_type_hint: 'access_token' }),
    })
    if (!response.ok) throw new Error(`introspection answered ${response.status}`)
    return ((await response.json()) as { active?: boolean }).active === true
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
    let valid: boolean
    try {
      valid = await active(token)
    } catch {
      counters.unavailable++
      return send(res, 503, { error: 'temporarily_unavailable' })
    }
    if (!valid) {
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
