import { createHash } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { DpopProofError, verifyDpopProof } from './dpop-proof.js'
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
  /** DPoP proofs accepted (signature, htm, htu, iat, jti, ath and the token's `cnf.jkt`). */
  dpopAccepted: number
  /** DPoP requests refused for their proof or binding (401 `invalid_dpop_proof` / `invalid_token`). */
  dpopRejected: number
}

export interface RunningApi {
  readonly origin: string
  readonly counters: ApiCounters
  stop(): Promise<void>
}

/**
 * A protected API on 127.0.0.1 that checks every token with the provider's introspection
 * endpoint (RFC 7662). `GET /orders` answers JSON; `POST /echo` answers the SHA-256 of the
 * body it received, so replays can be checked byte for byte.
 *
 * DPoP (RFC 9449 §7): `Authorization: DPoP <token>` needs a `DPoP` proof for this method and
 * URL with the token's `ath`, signed by the key of the token's `cnf.jkt` (from introspection),
 * with a `jti` not seen before; a DPoP-bound token sent as `Bearer` is refused.
 */
export async function startApi(options: { issuer: string }): Promise<RunningApi> {
  const counters: ApiCounters = {
    requests: 0,
    ok: 0,
    unauthorized: 0,
    unavailable: 0,
    dpopAccepted: 0,
    dpopRejected: 0,
  }
  /** `jti`s of accepted proofs, with when they may be forgotten (ms). */
  const seenJti = new Map<string, number>()
  let origin = ''
  const basic = `Basic ${Buffer.from(`${API_CLIENT.id}:${API_CLIENT.secret}`).toString('base64')}`

  interface Introspection {
    active?: boolean
    cnf?: { jkt?: string }
  }

  async function introspect(token: string): Promise<Introspection> {
    const response = await fetch(`${options.issuer}/token/introspection`, {
      method: 'POST',
      headers: { authorization: basic },
      body: new URLSearchParams({ token, token_type_hint: 'access_token' }),
    })
    if (!response.ok) throw new Error(`introspection answered ${response.status}`)
    return (await response.json()) as Introspection
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
    const match = /^(Bearer|DPoP) (.+)$/i.exec(header ?? '')
    const token = match?.[2]
    const dpop = match?.[1]?.toLowerCase() === 'dpop'
    if (!token) {
      counters.unauthorized++
      return send(
        res,
        401,
        { error: 'unauthorized' },
        { 'www-authenticate': 'Bearer realm="api", DPoP algs="ES256"' },
      )
    }
    const refuse = (error: string, description: string) => {
      counters.unauthorized++
      if (dpop) counters.dpopRejected++
      const challenge = dpop
        ? `DPoP algs="ES256", error="${error}", error_description="${description}"`
        : `Bearer realm="api", error="${error}", error_description="${description}"`
      return send(
        res,
        401,
        { error, error_description: description },
        { 'www-authenticate': challenge },
      )
    }
    let proof: { jkt: string; jti: string } | undefined
    if (dpop) {
      try {
        proof = verifyDpopProof({
          proof: typeof req.headers.dpop === 'string' ? req.headers.dpop : undefined,
          method: req.method ?? 'GET',
          url: `${origin}${req.url ?? '/'}`,
          accessToken: token,
        })
      } catch (error) {
        if (error instanceof DpopProofError) return refuse('invalid_dpop_proof', error.message)
        throw error
      }
      const now = Date.now()
      for (const [jti, until] of seenJti) if (until < now) seenJti.delete(jti)
      if (seenJti.has(`${proof.jkt} ${proof.jti}`)) {
        return refuse('invalid_dpop_proof', 'The DPoP proof jti was already used')
      }
      seenJti.set(`${proof.jkt} ${proof.jti}`, now + 120_000)
    }
    let introspection: Introspection
    try {
      introspection = await introspect(token)
    } catch {
      counters.unavailable++
      return send(res, 503, { error: 'temporarily_unavailable' })
    }
    if (introspection.active !== true)
      return refuse('invalid_token', 'The access token is not active')
    const jkt = introspection.cnf?.jkt
    if (jkt !== undefined && !dpop) {
      return refuse('invalid_token', 'The access token is DPoP-bound: use the DPoP scheme')
    }
    if (dpop && jkt !== proof?.jkt) {
      return refuse('invalid_token', 'The access token is not bound to the proof key')
    }
    if (dpop) counters.dpopAccepted++
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
  origin = `http://127.0.0.1:${port}`
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
