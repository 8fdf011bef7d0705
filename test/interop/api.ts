import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface InteropApi {
  readonly origin: string
  readonly counters: {
    requests: number
    ok: number
    unauthorized: number
    unavailable: number
    /** Questions to the authorization server: one per distinct token. */
    introspections: number
  }
  stop(): Promise<void>
}

/**
 * A protected API on 127.0.0.1: `GET /orders` answers 200 when the authorization server
 * says the Bearer token is active (`isActive`: introspection, or the server's own
 * validation), 401 with an RFC 6750 `invalid_token` challenge when it is not. The answer
 * is kept per token, as resource servers do (RFC 7662 §4): a storm of 200 requests asks
 * once per token, so a busy CI machine does not turn one Python server into the bottleneck.
 */
export async function startInteropApi(
  isActive: (accessToken: string) => Promise<boolean>,
): Promise<InteropApi> {
  const counters = { requests: 0, ok: 0, unauthorized: 0, unavailable: 0, introspections: 0 }
  const answers = new Map<string, Promise<boolean>>()

  function ask(token: string): Promise<boolean> {
    let answer = answers.get(token)
    if (!answer) {
      counters.introspections++
      answer = isActive(token)
      answers.set(token, answer)
      // a failed question is asked again next time
      answer.catch(() => answers.delete(token))
    }
    return answer
  }

  function send(res: ServerResponse, status: number, body: unknown, headers = {}) {
    res.writeHead(status, { 'content-type': 'application/json', ...headers })
    res.end(JSON.stringify(body))
  }

  async function handle(req: IncomingMessage, res: ServerResponse) {
    counters.requests++
    for await (const _chunk of req) {
      // drain the body
    }
    const token = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '')?.[1]
    let active = false
    if (token) {
      try {
        active = await ask(token)
      } catch {
        counters.unavailable++
        return send(res, 503, { error: 'temporarily_unavailable' })
      }
    }
    if (!active) {
      counters.unauthorized++
      return send(
        res,
        401,
        { error: 'invalid_token' },
        { 'www-authenticate': 'Bearer realm="orders", error="invalid_token"' },
      )
    }
    counters.ok++
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
