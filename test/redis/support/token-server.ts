import { randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { TokenSet } from '@reauth/core'

export interface TokenServerOptions {
  /** Access token lifetime, seconds. Default 60. */
  ttl?: number
  /** A rotated refresh token may be presented again for this many ms (0: never). */
  grace?: number
}

export interface TokenServerCounters {
  /** Successful refresh grants. */
  grants: number
  /** Grants answered from a rotated refresh token inside the grace period. */
  graceReuses: number
  /** Rotated refresh tokens presented again outside the grace period (the family is revoked). */
  reuses: number
  /** Refresh tokens rejected (reused, revoked or unknown). */
  rejected: number
  /** API requests answered 200 / 401. */
  ok: number
  unauthorized: number
}

export interface TokenServer {
  readonly origin: string
  readonly tokenEndpoint: string
  readonly counters: TokenServerCounters
  /** Every token value handed out, for leak checks. */
  readonly issued: Set<string>
  /** The first token set of a session (a sign-in). */
  signIn(): TokenSet
  /** Move the server's clock (ms); workers move theirs by the same offset. */
  advance(ms: number): void
  readonly offset: number
  /** Invalidate every access token now, without moving the clock: the next requests get 401. */
  expireAll(): void
  /** Change the grace period. */
  setGrace(ms: number): void
  stop(): Promise<void>
}

interface Family {
  revoked: boolean
}

/**
 * A loopback OAuth token endpoint and protected API for the multi-process tests. Refresh
 * tokens rotate on every grant; presenting a rotated one again revokes the whole family
 * (RFC 9700 §4.14.2), unless it comes within the optional grace period.
 */
export async function startTokenServer(options: TokenServerOptions = {}): Promise<TokenServer> {
  const ttl = options.ttl ?? 60
  let grace = options.grace ?? 0
  let offset = 0
  let epoch = 0
  const now = () => Date.now() + offset
  const counters: TokenServerCounters = {
    grants: 0,
    graceReuses: 0,
    reuses: 0,
    rejected: 0,
    ok: 0,
    unauthorized: 0,
  }
  const issued = new Set<string>()
  const access = new Map<string, { family: Family; exp: number; epoch: number }>()
  const refresh = new Map<string, { family: Family; rotatedAt?: number }>()

  function mint(family: Family) {
    const accessToken = `at-${randomBytes(12).toString('base64url')}`
    const refreshToken = `rt-${randomBytes(12).toString('base64url')}`
    issued.add(accessToken)
    issued.add(refreshToken)
    access.set(accessToken, { family, exp: now() + ttl * 1000, epoch })
    refresh.set(refreshToken, { family })
    return { accessToken, refreshToken }
  }

  function send(res: ServerResponse, status: number, body: unknown, headers = {}) {
    res.writeHead(status, { 'content-type': 'application/json', ...headers })
    res.end(JSON.stringify(body))
  }

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    if (req.method === 'POST' && req.url === '/token') {
      const form = new URLSearchParams(Buffer.concat(chunks).toString())
      const presented = form.get('refresh_token') ?? ''
      const entry = refresh.get(presented)
      const invalid = () => {
        counters.rejected++
        send(res, 400, { error: 'invalid_grant', error_description: 'refresh token not valid' })
      }
      if (form.get('grant_type') !== 'refresh_token' || !entry || entry.family.revoked) {
        return invalid()
      }
      if (entry.rotatedAt !== undefined) {
        if (now() - entry.rotatedAt <= grace) {
          counters.graceReuses++
        } else {
          counters.reuses++
          entry.family.revoked = true
          return invalid()
        }
      } else {
        entry.rotatedAt = now()
      }
      counters.grants++
      const minted = mint(entry.family)
      return send(res, 200, {
        access_token: minted.accessToken,
        token_type: 'Bearer',
        expires_in: ttl,
        refresh_token: minted.refreshToken,
      })
    }
    const token = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '')?.[1] ?? ''
    const entry = access.get(token)
    if (!entry || entry.family.revoked || entry.exp <= now() || entry.epoch !== epoch) {
      counters.unauthorized++
      return send(
        res,
        401,
        { error: 'invalid_token' },
        { 'www-authenticate': 'Bearer error="invalid_token"' },
      )
    }
    counters.ok++
    return send(res, 200, { orders: [1, 2] })
  }

  const server = createServer((req, res) => {
    handle(req, res).catch(() => send(res, 500, { error: 'server_error' }))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  const origin = `http://127.0.0.1:${port}`
  return {
    origin,
    tokenEndpoint: `${origin}/token`,
    counters,
    issued,
    get offset() {
      return offset
    },
    signIn() {
      const minted = mint({ revoked: false })
      return {
        ...minted,
        tokenType: 'Bearer',
        expiresAt: now() + ttl * 1000,
        issuedAt: now(),
      }
    },
    advance(ms) {
      offset += ms
    },
    expireAll() {
      epoch++
    },
    setGrace(ms) {
      grace = ms
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
