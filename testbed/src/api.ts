import { createHash, createPublicKey, type JsonWebKey, randomBytes, verify } from 'node:crypto'
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
  /** Requests answered 401 because the token was for another audience (or none). */
  wrongAudience: number
  /** DPoP proofs accepted (signature, htm, htu, iat, jti, ath and the token's `cnf.jkt`). */
  dpopAccepted: number
  /**
   * DPoP requests refused for their proof or binding (401 `invalid_dpop_proof` / `invalid_token`
   * for a token bound to another key). A token that is not active (expired, revoked) is not a
   * DPoP failure: it counts in `unauthorized` only.
   */
  dpopRejected: number
  /** DPoP requests answered 401 `use_dpop_nonce` (no nonce, or not the current one). */
  dpopNonceChallenges: number
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
  /**
   * DPoP nonces (RFC 9449 §9): `requireNonce: true` demands the API's current nonce in every
   * proof; a proof without it is answered 401 `use_dpop_nonce` with the nonce in `DPoP-Nonce`
   * (every answer carries it). {@link RunningApi.rotateNonce} changes it.
   */
  dpop?: { requireNonce?: boolean }
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

/** The `cnf.jkt` (RFC 9449 §6) of a JWT's claims or an introspection answer, if any. */
function confirmationJkt(cnf: unknown): string | undefined {
  if (typeof cnf !== 'object' || cnf === null) return undefined
  const jkt = (cnf as { jkt?: unknown }).jkt
  return typeof jkt === 'string' ? jkt : undefined
}

export interface RunningApi {
  readonly origin: string
  readonly counters: ApiCounters
  /**
   * A new DPoP nonce (with `dpop.requireNonce`): now, or with `atRequest: n` when the n-th
   * request from now arrives (before it is checked), so that a storm meets it midway.
   */
  rotateNonce(options?: { atRequest?: number }): void
  stop(): Promise<void>
}

/**
 * A protected API on 127.0.0.1. An opaque token is checked with the provider's
 * introspection endpoint (RFC 7662); a JWT access token (RFC 9068) locally, against the
 * provider's JWKS (RS256 signature, `iss`, `exp`). With `audience` it is one resource server
 * (RFC 8707): a token for another audience, or none, is answered 401 `invalid_token`.
 * `GET /orders` answers JSON; `POST /echo` answers the SHA-256 of the body it received, so
 * replays can be checked byte for byte.
 *
 * DPoP (RFC 9449 §7): `Authorization: DPoP <token>` needs a `DPoP` proof for this method and
 * URL with the token's `ath`, signed by the key of the token's `cnf.jkt` (a JWT's claim, or
 * from introspection for an opaque token), with a `jti` not seen before; a DPoP-bound token
 * sent as `Bearer` is refused.
 */
export async function startApi(options: ApiOptions): Promise<RunningApi> {
  const counters: ApiCounters = {
    requests: 0,
    ok: 0,
    unauthorized: 0,
    unavailable: 0,
    wrongAudience: 0,
    dpopAccepted: 0,
    dpopRejected: 0,
    dpopNonceChallenges: 0,
  }
  const requireNonce = options.dpop?.requireNonce === true
  const newNonce = () => randomBytes(16).toString('base64url')
  let nonce = newNonce()
  /** `counters.requests` at whose arrival the nonce rotates. */
  let rotateAt: number | undefined
  /** `jti`s of accepted proofs, with when they may be forgotten (ms). */
  const seenJti = new Map<string, number>()
  let origin = ''
  const basic = `Basic ${Buffer.from(`${API_CLIENT.id}:${API_CLIENT.secret}`).toString('base64')}`
  let keys: Promise<Array<JsonWebKey & { kid?: string }>> | undefined

  /**
   * What the token says about itself once checked: its audiences and the DPoP key it is bound
   * to (`cnf.jkt`); `undefined` when it is not valid.
   */
  type Checked = { aud: string[]; jkt: string | undefined } | undefined

  async function introspect(token: string): Promise<Checked> {
    const response = await fetch(`${options.issuer}/token/introspection`, {
      method: 'POST',
      headers: { authorization: basic },
      body: new URLSearchParams({ token, token_type_hint: 'access_token' }),
    })
    if (!response.ok) throw new Error(`introspection answered ${response.status}`)
    const body = (await response.json()) as { active?: boolean; aud?: unknown; cnf?: unknown }
    return body.active === true
      ? { aud: audiences(body.aud), jkt: confirmationJkt(body.cnf) }
      : undefined
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
    return { aud: audiences(claims.aud), jkt: confirmationJkt(claims.cnf) }
  }

  function check(token: string): Promise<Checked> {
    return token.split('.').length === 3 ? verifyJwt(token) : introspect(token)
  }

  function send(res: ServerResponse, status: number, body: unknown, headers = {}) {
    const nonceHeader = requireNonce ? { 'dpop-nonce': nonce } : {}
    res.writeHead(status, { 'content-type': 'application/json', ...nonceHeader, ...headers })
    res.end(JSON.stringify(body))
  }

  async function handle(req: IncomingMessage, res: ServerResponse) {
    counters.requests++
    if (rotateAt !== undefined && counters.requests >= rotateAt) {
      rotateAt = undefined
      nonce = newNonce()
    }
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
    /** A 401 with the challenge of the scheme the request used. */
    const deny = (error: string, description: string) => {
      counters.unauthorized++
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
    /** A 401 for the token or its proof; counted as a DPoP rejection when DPoP was used. */
    const refuse = (error: string, description: string) => {
      if (dpop) counters.dpopRejected++
      return deny(error, description)
    }
    let proof: ReturnType<typeof verifyDpopProof> | undefined
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
      if (requireNonce && proof.nonce !== nonce) {
        counters.dpopNonceChallenges++
        counters.unauthorized++
        const description = 'The DPoP proof must carry the current nonce'
        return send(
          res,
          401,
          { error: 'use_dpop_nonce', error_description: description },
          {
            'www-authenticate': `DPoP algs="ES256", error="use_dpop_nonce", error_description="${description}"`,
          },
        )
      }
      const now = Date.now()
      for (const [jti, until] of seenJti) if (until < now) seenJti.delete(jti)
      if (seenJti.has(`${proof.jkt} ${proof.jti}`)) {
        return refuse('invalid_dpop_proof', 'The DPoP proof jti was already used')
      }
      seenJti.set(`${proof.jkt} ${proof.jti}`, now + 120_000)
    }
    let checked: Checked
    try {
      checked = await check(token)
    } catch {
      counters.unavailable++
      return send(res, 503, { error: 'temporarily_unavailable' })
    }
    // Expired or revoked: the client's cue to refresh, not a proof or binding failure.
    if (!checked) return deny('invalid_token', 'The access token is not active')
    if (checked.jkt !== undefined && !dpop) {
      return refuse('invalid_token', 'The access token is DPoP-bound: use the DPoP scheme')
    }
    if (dpop && checked.jkt !== proof?.jkt) {
      return refuse('invalid_token', 'The access token is not bound to the proof key')
    }
    if (options.audience !== undefined && !checked.aud.includes(options.audience)) {
      // A valid token, well presented, for another resource server: not a DPoP failure.
      counters.wrongAudience++
      return deny('invalid_token', 'The access token is for another audience')
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
    origin,
    counters,
    rotateNonce(rotation = {}) {
      if (rotation.atRequest === undefined) nonce = newNonce()
      else rotateAt = counters.requests + rotation.atRequest
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
