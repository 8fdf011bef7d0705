/**
 * `pnpm soak`: at least 100 000 requests through axios, ky and fetch on shared engines against
 * a loopback node:http server (127.0.0.1, keep-alive) that expires tokens and injects faults at
 * random; its token endpoint rotates refresh tokens and counts reuse. Bounded to 2 minutes.
 *
 * Exits non-zero on any lost or double-settled request, any refresh-token reuse (a duplicate
 * grant), or growth (after forced GC) in heap, open handles, timers or listeners between the
 * first and the last tenth of the run.
 *
 * Env: SOAK_REQUESTS (default 100000), SOAK_CONCURRENCY (default 64), SOAK_SEED.
 */
import {
  createServer,
  Agent as HttpAgent,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http'
import type { AddressInfo } from 'node:net'
// soak/ is not a workspace package: import the packages' sources, and the clients from where
// the adapters themselves resolve them (the same module instances).
import axios from '../packages/axios/node_modules/axios/index.js'
import { attachReauth } from '../packages/axios/src/index.js'
import {
  createEngine,
  createLocalLock,
  createMemoryStore,
  type Engine,
  OAuthError,
  parseTokenResponse,
  type RefreshFunction,
} from '../packages/core/src/index.js'
import { createFetch } from '../packages/fetch/src/index.js'
import ky from '../packages/ky/node_modules/ky/distribution/index.js'
import { withReauth } from '../packages/ky/src/index.js'

const TOTAL = Number(process.env.SOAK_REQUESTS ?? 100_000)
const CONCURRENCY = Number(process.env.SOAK_CONCURRENCY ?? 64)
const DEADLINE_MS = 115_000
const ACCESS_TTL_S = 1
const started = performance.now()

// A small seeded PRNG (mulberry32): a failing run can be replayed with SOAK_SEED.
let seed = Number(process.env.SOAK_SEED ?? Math.floor(Math.random() * 2 ** 31))
const runSeed = seed
function random(): number {
  seed |= 0
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
}

// ---------------------------------------------------------------- the server

const server = {
  issued: 0,
  refreshToken: 'r0',
  used: new Set<string>(),
  access: new Map<string, number>(), // access token → expiry (ms)
  tokenRequests: 0,
  grants: 0,
  reuse: 0,
  why: {} as Record<string, number>,
  faults: { 500: 0, 503: 0, 429: 0, reset: 0, malformed: 0 },
  api: { ok: 0, unauthorized: 0, expiredAtRandom: 0, faults: 0 },
}

function mintAccess(): string {
  const token = `at-${++server.issued}-${Math.floor(random() * 1e9)}`
  server.access.set(token, Date.now() + ACCESS_TTL_S * 1000)
  // tokens older than a few lifetimes can never be valid again: forget them (bounded state)
  for (const [old, expiry] of server.access) {
    if (expiry < Date.now() - 10_000) server.access.delete(old)
    else break
  }
  return token
}

function json(response: ServerResponse, status: number, body: unknown, headers = {}): void {
  const text = JSON.stringify(body)
  response.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    ...headers,
  })
  response.end(text)
}

function tokenEndpoint(request: IncomingMessage, body: string, response: ServerResponse): void {
  server.tokenRequests++
  // Faults are injected before any state changes, as a proxy or an overloaded server would.
  const roll = random()
  if (roll < 0.05) {
    server.faults[500]++
    response.writeHead(500, { 'content-type': 'text/html' }).end('<h1>500</h1>')
    return
  }
  if (roll < 0.1) {
    server.faults[503]++
    response.writeHead(503, { 'content-type': 'text/html' }).end('<h1>503</h1>')
    return
  }
  if (roll < 0.13) {
    server.faults[429]++
    // 0 seconds: the client may retry at once (a longer wait would stall the whole soak)
    response.writeHead(429, { 'retry-after': '0' }).end()
    return
  }
  if (roll < 0.16) {
    server.faults.reset++
    request.socket.destroy()
    return
  }
  if (roll < 0.19) {
    server.faults.malformed++
    json(response, 200, { token_type: 'Bearer', expires_in: ACCESS_TTL_S })
    return
  }
  const presented = new URLSearchParams(body).get('refresh_token') ?? ''
  if (presented !== server.refreshToken) {
    if (server.used.has(presented)) server.reuse++
    json(response, 400, { error: 'invalid_grant' })
    return
  }
  server.used.add(presented)
  server.refreshToken = `r${server.issued + 1}-${Math.floor(random() * 1e9)}`
  server.grants++
  json(
    response,
    200,
    {
      access_token: mintAccess(),
      token_type: 'Bearer',
      expires_in: ACCESS_TTL_S,
      refresh_token: server.refreshToken,
    },
    { 'cache-control': 'no-store' },
  )
}

function api(request: IncomingMessage, response: ServerResponse): void {
  if (random() < 0.002) {
    server.api.faults++
    json(response, 500, { error: 'boom' })
    return
  }
  const token = /^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1]
  const expiry = token === undefined ? undefined : server.access.get(token)
  // now and then the server expires the token early (revocation, clock skew)
  if (token !== undefined && expiry !== undefined && random() < 0.0005) {
    server.api.expiredAtRandom++
    server.access.set(token, 0)
  }
  const valid = expiry !== undefined && (server.access.get(token ?? '') ?? 0) > Date.now()
  if (!valid) {
    server.api.unauthorized++
    const why =
      token === undefined
        ? 'none'
        : expiry === undefined
          ? 'unknown'
          : expiry === 0
            ? 'revoked'
            : 'expired'
    server.why[why] = (server.why[why] ?? 0) + 1
    json(
      response,
      401,
      { error: 'invalid_token' },
      {
        'www-authenticate': 'Bearer error="invalid_token"',
      },
    )
    return
  }
  server.api.ok++
  json(response, 200, { ok: true })
}

const http = createServer({ keepAliveTimeout: 5_000 }, (request, response) => {
  const chunks: Buffer[] = []
  request.on('data', (chunk: Buffer) => chunks.push(chunk))
  request.on('end', () => {
    const body = Buffer.concat(chunks).toString()
    if (request.method === 'POST' && request.url === '/token')
      tokenEndpoint(request, body, response)
    else api(request, response)
  })
})
await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
const ORIGIN = `http://127.0.0.1:${(http.address() as AddressInfo).port}`

// ---------------------------------------------------------------- the clients

const initialAccess = mintAccess()
const refresh: RefreshFunction = async ({ tokens, signal, startedAt }) => {
  const body = new URLSearchParams({ grant_type: 'refresh_token' })
  if (tokens.refreshToken) body.set('refresh_token', tokens.refreshToken)
  const response = await fetch(`${ORIGIN}/token`, { method: 'POST', body, signal })
  const text = await response.text()
  if (!response.ok) {
    let error: unknown
    try {
      error = (JSON.parse(text) as { error?: unknown }).error
    } catch {}
    if (typeof error === 'string') throw new OAuthError({ error, status: response.status })
    throw Object.assign(new Error(`HTTP ${response.status}`), { response })
  }
  return parseTokenResponse(JSON.parse(text), { sentAt: startedAt })
}

// Two engines sharing one store and one lock (two tabs' worth), each shared by three clients.
const store = createMemoryStore({
  accessToken: initialAccess,
  tokenType: 'Bearer',
  refreshToken: server.refreshToken,
  expiresAt: Date.now() + ACCESS_TTL_S * 1000,
  issuedAt: Date.now(),
})
const lock = createLocalLock()
const engines: Engine[] = [0, 1].map(() =>
  createEngine({ refresh, store, lock, leeway: 300, refreshTimeout: 2_000 }),
)
const agent = new HttpAgent({ keepAlive: true, maxSockets: CONCURRENCY })

type Client = { name: string; get(path: string): Promise<number> }
const clients: Client[] = engines.flatMap((engine, index) => {
  const instance = axios.create({ baseURL: ORIGIN, httpAgent: agent, adapter: 'http' })
  attachReauth(instance, engine)
  const kyApi = withReauth(
    ky.create({ prefixUrl: ORIGIN, retry: 0, throwHttpErrors: false }),
    engine,
  )
  const fetchApi = createFetch(engine, { origins: [ORIGIN] })
  return [
    {
      name: `axios#${index}`,
      async get(path) {
        // axios's default validateStatus: reauth's interceptor sees a 401 as an AxiosError
        try {
          return (await instance.get(path)).status
        } catch (error) {
          if (axios.isAxiosError(error) && error.response) return error.response.status
          throw error
        }
      },
    },
    {
      name: `ky#${index}`,
      async get(path) {
        const response = await kyApi.get(path.slice(1))
        await response.arrayBuffer()
        return response.status
      },
    },
    {
      name: `fetch#${index}`,
      async get(path) {
        const response = await fetchApi(`${ORIGIN}${path}`)
        await response.arrayBuffer()
        return response.status
      },
    },
  ]
})

// ---------------------------------------------------------------- the load

const settled = new Uint8Array(TOTAL)
const outcomes = new Map<string, number>()
const count = (key: string) => outcomes.set(key, (outcomes.get(key) ?? 0) + 1)
let startedRequests = 0
let doubleSettled = 0

function one(id: number): Promise<void> {
  const client = clients[id % clients.length] as Client
  startedRequests++
  const kind = client.name.replace(/#\d+$/, '')
  const settle = (key: string) => {
    if (settled[id] === 1) doubleSettled++
    settled[id] = 1
    count(`${kind} ${key}`)
  }
  return client.get(`/items/${id}`).then(
    (status) => settle(String(status)),
    (error: unknown) => settle((error as Error)?.name ?? 'unknown error'),
  )
}

interface Sample {
  heap: number
  handles: Record<string, number>
  listeners: number
}

async function sample(): Promise<Sample> {
  // let sockets' and streams' pending callbacks run first: only what lingers is compared
  await new Promise((resolve) => setTimeout(resolve, 200))
  for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve))
  ;(globalThis as { gc?: () => void }).gc?.()
  ;(globalThis as { gc?: () => void }).gc?.()
  const handles: Record<string, number> = {}
  for (const type of process.getActiveResourcesInfo()) handles[type] = (handles[type] ?? 0) + 1
  let listeners = 0
  for (const name of process.eventNames()) listeners += process.listenerCount(name)
  for (const name of http.eventNames()) listeners += http.listenerCount(name)
  for (const name of agent.eventNames()) listeners += agent.listenerCount(name)
  return { heap: process.memoryUsage().heapUsed, handles, listeners }
}

// Batches of one tenth each: between batches nothing is in flight, so samples compare alike.
const tenth = Math.ceil(TOTAL / 10)
const samples: Sample[] = []
let timedOut = false
const watchdog = setTimeout(() => {
  timedOut = true
}, DEADLINE_MS)

for (let batch = 0; batch < 10 && !timedOut; batch++) {
  let next = batch * tenth
  const end = Math.min(TOTAL, next + tenth)
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < end && !timedOut) await one(next++)
    }),
  )
  if (batch === 0 || batch === 9) samples.push(await sample())
}

// In-flight work has ended (every worker awaited its last request): anything unsettled is lost.
clearTimeout(watchdog)
const lost = startedRequests - settled.reduce((sum, bit) => sum + bit, 0)
const elapsed = (performance.now() - started) / 1000

// ---------------------------------------------------------------- the report

const failures: string[] = []
const [first, last] = samples
if (!(global as { gc?: unknown }).gc)
  failures.push('no forced GC: run with NODE_OPTIONS=--expose-gc')
if (timedOut) failures.push(`the run hit the ${DEADLINE_MS / 1000} s deadline`)
if (startedRequests < TOTAL) failures.push(`only ${startedRequests} of ${TOTAL} requests ran`)
if (lost > 0) failures.push(`${lost} requests lost (never settled)`)
if (doubleSettled > 0) failures.push(`${doubleSettled} requests settled twice`)
if (server.reuse > 0) failures.push(`${server.reuse} refresh-token reuses (duplicate grants)`)
const MB = 1024 * 1024
if (first && last) {
  const growth = last.heap - first.heap
  if (growth > 16 * MB && growth > first.heap * 0.25) {
    failures.push(`heap grew by ${(growth / MB).toFixed(1)} MB`)
  }
  for (const type of new Set([...Object.keys(first.handles), ...Object.keys(last.handles)])) {
    const before = first.handles[type] ?? 0
    const after = last.handles[type] ?? 0
    // Keep-alive sockets are a pool that warms up: both ends live in this process, so at most
    // two handles per connection, and at most CONCURRENCY + 1 connections per client kind.
    if (/TCPSocket|TCPWRAP/i.test(type)) {
      const pool = 2 * (2 * (CONCURRENCY + 1))
      if (after > pool)
        failures.push(`open ${type} handles: ${after}, above the pool bound ${pool}`)
    } else if (after > before) {
      failures.push(`open ${type} handles grew from ${before} to ${after}`)
    }
  }
  if (last.listeners > first.listeners) {
    failures.push(`listeners grew from ${first.listeners} to ${last.listeners}`)
  }
}

const stats = engines.map((engine) => engine.stats())
const sum = (key: keyof (typeof stats)[number]) => stats.reduce((total, s) => total + s[key], 0)
const rows: Array<[string, string | number]> = [
  ['seed', runSeed],
  ['requests', startedRequests],
  ['settled', startedRequests - lost],
  ['lost', lost],
  ['double-settled', doubleSettled],
  ...[...outcomes].sort().map(([key, n]): [string, number] => [`  outcome ${key}`, n]),
  ['elapsed (s)', elapsed.toFixed(1)],
  ['requests/s', Math.round(startedRequests / elapsed)],
  ['server: token requests', server.tokenRequests],
  ['server: grants', server.grants],
  ['server: refresh-token reuse', server.reuse],
  ['server: token faults 500/503/429/reset/malformed', Object.values(server.faults).join('/')],
  [
    'server: API 200 / 401 / 500 / expired early',
    `${server.api.ok} / ${server.api.unauthorized} / ${server.api.faults} / ${server.api.expiredAtRandom}`,
  ],
  ['server: 401 because', JSON.stringify(server.why)],
  ['engines: grants (proactive)', `${sum('grants')} (${sum('proactive')})`],
  [
    'engines: joins / adopted / stale retries',
    `${sum('joins')} / ${sum('adopted')} / ${sum('staleRetries')}`,
  ],
  [
    'engines: replays / failures / sessions expired',
    `${sum('replays')} / ${sum('failures')} / ${sum('sessionsExpired')}`,
  ],
  [
    'heap first → last tenth (MB)',
    first && last ? `${(first.heap / MB).toFixed(1)} → ${(last.heap / MB).toFixed(1)}` : 'n/a',
  ],
  [
    'handles first → last tenth',
    first && last ? `${JSON.stringify(first.handles)} → ${JSON.stringify(last.handles)}` : 'n/a',
  ],
  [
    'listeners first → last tenth',
    first && last ? `${first.listeners} → ${last.listeners}` : 'n/a',
  ],
]
const width = Math.max(...rows.map(([key]) => key.length))
for (const [key, value] of rows) console.log(`${key.padEnd(width)}  ${value}`)
console.log(failures.length ? `\nFAIL\n- ${failures.join('\n- ')}` : '\nPASS')

for (const engine of engines) engine.dispose()
agent.destroy()
http.closeAllConnections()
http.close()
process.exitCode = failures.length ? 1 : 0
