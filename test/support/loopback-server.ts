import { randomUUID } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

/** One sign-in on the loopback server: its tokens, counters and the request it holds back. */
interface Session {
  access: string | undefined
  refresh: string
  terminal: boolean
  /** Which route's first request waits for `/release` (or for `releaseAfter` 401s). */
  hold: 'token' | 'api' | undefined
  releaseAfter: number
  held: Array<() => void>
  heldWaiters: Array<() => void>
  released: boolean
  grants: number
  tokenRequests: number
  reuse: number
  ok: number
  unauthorized: number
  echoes: Array<{ authorization: boolean; contentType: string | null; bytes: string }>
}

/** What `GET /s/<sid>/stats` answers. */
export interface LoopbackStats {
  grants: number
  tokenRequests: number
  reuse: number
  ok: number
  unauthorized: number
  echoes: Session['echoes']
}

export interface LoopbackServer {
  /** `http://127.0.0.1:<port>` */
  origin: string
  close(): Promise<void>
}

function json(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
) {
  res.writeHead(status, {
    'content-type': 'application/json',
    'cache-control': 'no-store',
    ...headers,
  })
  res.end(JSON.stringify(body))
}

function unauthorized(res: ServerResponse) {
  json(res, 401, { error: 'invalid_token' }, { 'www-authenticate': 'Bearer error="invalid_token"' })
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

/**
 * A real HTTP authorization server and protected API on 127.0.0.1 for the runtime matrix:
 * scripts running under Bun, Deno, other Node versions and workerd talk to it with their own
 * fetch / http stack, so nothing of the network is faked. Sessions are independent, keyed by
 * the first path segment after `/s/`:
 *
 * - `POST /s/<sid>/signin?expired=1&terminal=1&hold=token|api&releaseAfter=N` → a token response.
 *   `expired`: the API rejects the first access token; `terminal`: every grant fails with
 *   `invalid_grant`; `hold`: the first token (or API) request waits for `/release`, or until the
 *   API answered N 401s.
 * - `POST /s/<sid>/token` (refresh_token grant, rotating), `ANY /s/<sid>/api/...` (Bearer),
 *   `POST /s/<sid>/api/echo` records each body, `GET /s/<sid>/held` answers once a request is held,
 *   `POST /s/<sid>/release`, `GET /s/<sid>/stats`.
 */
export async function startLoopbackServer(): Promise<LoopbackServer> {
  const sessions = new Map<string, Session>()

  const releaseHeld = (session: Session) => {
    session.released = true
    for (const release of session.held.splice(0)) release()
  }

  const hold = async (session: Session) => {
    if (session.released || session.held.length > 0) return
    await new Promise<void>((resolve) => {
      session.held.push(resolve)
      for (const waiter of session.heldWaiters.splice(0)) waiter()
    })
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      json(res, 500, { error: 'server_error', error_description: String(error) })
    })
  })

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1')
    const [, prefix, sid, route, ...rest] = url.pathname.split('/')
    if (prefix !== 's' || !sid || !route) return json(res, 404, { error: 'not_found' })
    if (route === 'signin' && req.method === 'POST') {
      const hold = url.searchParams.get('hold')
      const session: Session = {
        access: url.searchParams.has('expired') ? undefined : randomUUID(),
        refresh: randomUUID(),
        terminal: url.searchParams.has('terminal'),
        hold: hold === 'token' || hold === 'api' ? hold : undefined,
        releaseAfter: Number(url.searchParams.get('releaseAfter') ?? Number.POSITIVE_INFINITY),
        held: [],
        heldWaiters: [],
        released: false,
        grants: 0,
        tokenRequests: 0,
        reuse: 0,
        ok: 0,
        unauthorized: 0,
        echoes: [],
      }
      sessions.set(sid, session)
      return json(res, 200, {
        access_token: session.access ?? randomUUID(),
        refresh_token: session.refresh,
        token_type: 'Bearer',
        expires_in: 3600,
      })
    }
    const session = sessions.get(sid)
    if (!session) return json(res, 404, { error: 'unknown_session' })
    if (route === 'stats') {
      const { grants, tokenRequests, reuse, ok, echoes } = session
      return json(res, 200, {
        grants,
        tokenRequests,
        reuse,
        ok,
        unauthorized: session.unauthorized,
        echoes,
      })
    }
    if (route === 'held') {
      if (session.held.length === 0 && !session.released) {
        await new Promise<void>((resolve) => session.heldWaiters.push(resolve))
      }
      return json(res, 200, { held: true })
    }
    if (route === 'release') {
      releaseHeld(session)
      return json(res, 200, { released: true })
    }
    if (route === 'token' && req.method === 'POST') {
      const form = new URLSearchParams((await readBody(req)).toString('utf8'))
      session.tokenRequests++
      if (session.hold === 'token') await hold(session)
      if (session.terminal) {
        return json(res, 400, {
          error: 'invalid_grant',
          error_description: 'refresh token revoked',
        })
      }
      if (
        form.get('grant_type') !== 'refresh_token' ||
        form.get('refresh_token') !== session.refresh
      ) {
        session.reuse++
        return json(res, 400, { error: 'invalid_grant' })
      }
      session.grants++
      session.access = randomUUID()
      session.refresh = randomUUID()
      return json(res, 200, {
        access_token: session.access,
        refresh_token: session.refresh,
        token_type: 'Bearer',
        expires_in: 3600,
      })
    }
    if (route === 'api') {
      const bytes = await readBody(req)
      const authorization = req.headers.authorization
      if (rest[0] === 'echo') {
        session.echoes.push({
          authorization: authorization !== undefined,
          contentType: req.headers['content-type'] ?? null,
          bytes: bytes.toString('base64'),
        })
      }
      if (session.hold === 'api') await hold(session)
      // Checked after the hold: a late 401 is about the token that was current when it was sent.
      if (!session.access || authorization !== `Bearer ${session.access}`) {
        session.unauthorized++
        if (session.unauthorized >= session.releaseAfter) releaseHeld(session)
        return unauthorized(res)
      }
      session.ok++
      return json(res, 200, { ok: true, method: req.method })
    }
    return json(res, 404, { error: 'not_found' })
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const session of sessions.values()) releaseHeld(session)
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
