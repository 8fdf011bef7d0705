import { type ChildProcess, fork } from 'node:child_process'
import { Agent, request } from 'node:http'
import type { LateConfig, ServerConfig, ServerStats, TokenResponse, TraceEvent } from './server.js'

/** The forked loopback server and its control channel. */
export interface Server {
  /** `http://127.0.0.1:<port>` */
  origin: string
  apiUrl: string
  tokenUrl: string
  /** New configuration, counters zeroed, all tokens forgotten; returns a fresh token pair. */
  reset(config?: ServerConfig): Promise<TokenResponse>
  /** Every access token issued so far gets 401 from now on. */
  invalidate(): Promise<void>
  /** Hold the token endpoint (`true`) or release every held grant (`false`). */
  hold(on: boolean): Promise<void>
  /** Hold every `GET /api` unanswered (`true`), or answer all held ones (`false`). */
  holdApi(on: boolean): Promise<void>
  /** Answer the first `immediate` 401s at once and hold the rest until a grant completed. */
  late(config: LateConfig): Promise<void>
  stats(): Promise<ServerStats>
  /** Start recording what the server does (`true`), or stop and get the events (`false`). */
  trace(on: boolean): Promise<{ events: TraceEvent[] }>
  close(): Promise<void>
}

// The control channel has its own agent, so it never queues behind the clients under test.
const agent = new Agent({ keepAlive: true, maxSockets: 2 })

function call<T>(origin: string, path: string, body?: unknown): Promise<T> {
  return new Promise((resolve, reject) => {
    const text = body === undefined ? '' : JSON.stringify(body)
    const req = request(
      `${origin}${path}`,
      {
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) },
        timeout: 10_000,
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (chunk: Buffer) => chunks.push(chunk))
        res.on('end', () => {
          try {
            resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as T)
          } catch (error) {
            reject(error)
          }
        })
      },
    )
    req.on('timeout', () => req.destroy(new Error(`control ${path} timed out`)))
    req.on('error', reject)
    req.end(text)
  })
}

/** Fork the server (inheriting tsx's loader from this process) and wait for its port. */
export async function startServer(): Promise<Server> {
  const child: ChildProcess = fork(new URL('./server.ts', import.meta.url), [], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the bench server did not start')), 20_000)
    child.once('message', (message: { port: number }) => {
      clearTimeout(timer)
      resolve(message.port)
    })
    child.once('exit', (code) => reject(new Error(`the bench server exited (${code})`)))
  })
  const origin = `http://127.0.0.1:${port}`
  return {
    origin,
    apiUrl: `${origin}/api`,
    tokenUrl: `${origin}/token`,
    reset: (config = {}) => call(origin, '/__ctl/reset', config),
    invalidate: () => call(origin, '/__ctl/invalidate'),
    hold: (on) => call(origin, '/__ctl/hold', { on }),
    holdApi: (on) => call(origin, '/__ctl/hold-api', { on }),
    late: (config) => call(origin, '/__ctl/late', config),
    stats: () => call(origin, '/__ctl/stats'),
    trace: (on) => call(origin, '/__ctl/trace', { on }),
    close: async () => {
      agent.destroy()
      if (child.exitCode !== null) return
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.kill()
      await exited
    },
  }
}
