/**
 * The loopback server of the browser tests: serves the test page, a token endpoint that
 * rotates refresh tokens and revokes the session when one is reused, and a protected API.
 * Expiry and holds are controlled from the test (same process), never by sleeping.
 */
import { randomUUID } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { extname, join, normalize } from 'node:path'

export interface Held {
  tab: string | undefined
  /** Let the held token request go on (it is processed only if its client is still there). */
  release(): void
  /** Settles when the client went away (the tab closed) while held. */
  gone: Promise<void>
}

export interface TokenServer {
  origin: string
  /** Sign in: a fresh session, its first tokens. */
  signIn(): { accessToken: string; tokenType: 'Bearer'; refreshToken: string }
  /** Make every access token issued so far invalid (the server says 401 from now on). */
  expireAll(): void
  /** Hold the next token request before it is processed; resolves when it arrives. */
  holdNext(): Promise<Held>
  counts: {
    grants: number
    reuse: number
    revoked: number
    dropped: number
    api: number
    api401: number
  }
  close(): Promise<void>
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css',
  '.json': 'application/json',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
}

/** Serve files from `root` (GET), or the given routes. */
export async function serveStatic(
  root: string,
): Promise<{ origin: string; close(): Promise<void> }> {
  const server = createServer(async (req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname
    const file = normalize(join(root, path === '/' ? 'index.html' : path))
    if (!file.startsWith(root)) return void res.writeHead(403).end()
    try {
      const body = await readFile(file)
      res.writeHead(200, {
        'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
        'cache-control': 'no-store',
      })
      res.end(body)
    } catch {
      res.writeHead(404).end()
    }
  })
  return listen(server)
}

async function listen(server: ReturnType<typeof createServer>) {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

/** A JSON answer that no cache keeps. */
export function json(
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

/** The whole request body, as text. */
export async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

export async function startTokenServer(page: {
  html: string
  script: string
}): Promise<TokenServer> {
  const access = new Set<string>()
  let current: string | undefined
  const used = new Set<string>()
  let hold: ((held: Held) => void) | undefined
  const counts = { grants: 0, reuse: 0, revoked: 0, dropped: 0, api: 0, api401: 0 }

  function issue() {
    const accessToken = `at-${randomUUID()}`
    const refreshToken = `rt-${randomUUID()}`
    access.add(accessToken)
    current = refreshToken
    return { accessToken, tokenType: 'Bearer' as const, refreshToken }
  }

  async function token(req: IncomingMessage, res: ServerResponse) {
    const form = new URLSearchParams(await readBody(req))
    const waiting = hold
    if (waiting) {
      hold = undefined
      let release!: () => void
      const released = new Promise<void>((resolve) => {
        release = resolve
      })
      let goneResolve!: () => void
      const gone = new Promise<void>((resolve) => {
        goneResolve = resolve
      })
      let closed = false
      res.on('close', () => {
        if (!res.writableEnded) {
          closed = true
          goneResolve()
        }
      })
      const tab = req.headers['x-tab']
      waiting({ tab: typeof tab === 'string' ? tab : undefined, release, gone })
      await Promise.race([released, gone])
      if (closed) {
        // The client went away before the grant was processed: nothing was rotated.
        counts.dropped++
        return
      }
    }
    const presented = form.get('refresh_token') ?? ''
    if (form.get('grant_type') !== 'refresh_token')
      return json(res, 400, { error: 'unsupported_grant_type' })
    if (presented === current && current !== undefined) {
      used.add(presented)
      counts.grants++
      return json(res, 200, { ...snake(issue()), expires_in: 3600 })
    }
    if (used.has(presented)) {
      // Reuse of a rotated refresh token: revoke the whole session (RFC 9700 §4.14.2).
      counts.reuse++
      counts.revoked++
      current = undefined
      access.clear()
    }
    return json(res, 400, { error: 'invalid_grant' })
  }

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x')
    if (req.method === 'GET' && url.pathname === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
      return void res.end(page.html)
    }
    if (req.method === 'GET' && url.pathname === '/tab.js') {
      res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' })
      return void res.end(page.script)
    }
    if (req.method === 'POST' && url.pathname === '/token') return void token(req, res)
    if (req.method === 'GET' && url.pathname === '/api/data') {
      counts.api++
      const header = req.headers.authorization ?? ''
      const presented = header.startsWith('Bearer ') ? header.slice(7) : ''
      if (!access.has(presented)) {
        counts.api401++
        return json(
          res,
          401,
          { error: 'invalid_token' },
          {
            'www-authenticate': 'Bearer error="invalid_token"',
          },
        )
      }
      return json(res, 200, { ok: true, query: url.search })
    }
    res.writeHead(404).end()
  })
  const { origin, close } = await listen(server)
  return {
    origin,
    counts,
    signIn: () => {
      used.clear()
      access.clear()
      return issue()
    },
    expireAll: () => access.clear(),
    holdNext: () =>
      new Promise<Held>((resolve) => {
        hold = resolve
      }),
    close,
  }
}

function snake(tokens: { accessToken: string; tokenType: string; refreshToken: string }) {
  return {
    access_token: tokens.accessToken,
    token_type: tokens.tokenType,
    refresh_token: tokens.refreshToken,
  }
}
