/**
 * One server process of the multi-process tests: its own engine over the shared Redis store
 * and lock, with @reauth/fetch in front. Driven by the parent over IPC (see protocol.ts).
 */
import {
  createEngine,
  type Engine,
  type RefreshFunction,
  type TokenSet,
  type TokenStore,
} from '@reauth/core'
import { createFetch, type ReauthFetch } from '@reauth/fetch'
import { createRefreshGrant } from '@reauth/oauth'
import { createRedisSession } from '@reauth/redis'
import { createClient } from 'redis'
import { createTestRefresh } from '../../support/refresh.js'
import type { FromWorker, Outcome, ToWorker, WorkerSetup } from './protocol.js'

const send = (message: FromWorker) => process.send?.(message)
const never = new Promise<never>(() => {})

// The parent moves the token server's clock; this process moves its own by the same offset.
const realNow = Date.now.bind(Date)
let offset = 0
Date.now = () => realNow() + offset

let armed: 'hold-lock' | 'hold-store' | undefined
let engine: Engine | undefined
let api: ReauthFetch | undefined
let origin = ''
let client: ReturnType<typeof createClient> | undefined
const texts: string[] = []

async function setup(options: WorkerSetup): Promise<void> {
  engine?.dispose()
  client?.destroy()
  client = createClient({
    url: options.redisUrl,
    socket: { reconnectStrategy: () => 100, connectTimeout: 1_000 },
  })
  client.on('error', () => {})
  await client.connect()
  const session = createRedisSession(client, {
    key: options.key,
    refreshTimeout: options.refreshTimeout,
    lease: options.lease,
    waitTimeout: options.waitTimeout,
    retryInterval: options.retryInterval,
    commandTimeout: options.commandTimeout,
  })
  const grant: RefreshFunction =
    options.grant.kind === 'plain'
      ? createTestRefresh(options.grant.tokenEndpoint)
      : createRefreshGrant(options.grant.options)
  const store: TokenStore = {
    get: () => session.store.get(),
    clear: () => session.store.clear(),
    subscribe: (listener) => session.store.subscribe(listener),
    async set(tokens: TokenSet) {
      if (armed === 'hold-store') {
        send({ type: 'granted' })
        await never
      }
      await session.store.set(tokens)
    },
  }
  const lock = {
    run<T>(key: string, fn: () => Promise<T>): Promise<T> {
      return session.lock.run(key, async () => {
        if (armed === 'hold-lock') {
          send({ type: 'holding' })
          await never
        }
        return fn()
      })
    },
  }
  const logLine = (message: string, meta?: Record<string, unknown>) => {
    texts.push(message, JSON.stringify(meta ?? {}))
  }
  engine = createEngine({
    refresh: grant,
    store,
    lock,
    lockKey: session.lockKey,
    refreshTimeout: session.refreshTimeout,
    logger: { debug: logLine, info: logLine, warn: logLine, error: logLine },
  })
  for (const event of ['refresh', 'refreshError', 'sessionExpired'] as const) {
    engine.on(event, (payload) => texts.push(JSON.stringify(payload)))
  }
  origin = options.api
  api = createFetch(engine, { origins: [origin] })
}

function describe(error: unknown): Outcome {
  const e = error as { name?: string; code?: string; retryable?: boolean; message?: string }
  const cause = (error as { cause?: { name?: string; code?: string } }).cause
  const outcome: Outcome = { error: String(e?.name), message: String(e?.message) }
  if (typeof e?.code === 'string') outcome.code = e.code
  if (typeof e?.retryable === 'boolean') outcome.retryable = e.retryable
  if (cause) outcome.cause = `${cause.name}${cause.code ? `:${cause.code}` : ''}`
  let current: unknown = error
  for (let depth = 0; current instanceof Error && depth < 5; depth++) {
    texts.push(current.message, current.stack ?? '')
    current = current.cause
  }
  return outcome
}

async function burst(size: number): Promise<Outcome[]> {
  const fetcher = api
  if (!fetcher) throw new Error('not set up')
  return Promise.all(
    Array.from({ length: size }, () =>
      fetcher(`${origin}/orders`).then(async (response): Promise<Outcome> => {
        await response.arrayBuffer()
        return { status: response.status }
      }, describe),
    ),
  )
}

process.on('message', (raw) => {
  const message = raw as ToWorker
  const reply = (extra: Omit<Extract<FromWorker, { type: 'reply' }>, 'type' | 'id'> = {}) =>
    send({ type: 'reply', id: message.id, ...extra })
  switch (message.type) {
    case 'setup':
      armed = undefined
      setup(message.setup).then(
        () => reply(),
        (error: unknown) => reply({ outcomes: [describe(error)] }),
      )
      break
    case 'clock':
      offset = message.offset
      reply()
      break
    case 'arm':
      armed = message.mode
      reply()
      break
    case 'burst':
      void burst(message.size).then((outcomes) => reply({ outcomes }))
      break
    case 'report':
      reply({ texts: texts.splice(0), ...(engine ? { stats: engine.stats() } : {}) })
      break
  }
})
process.on('disconnect', () => process.exit(0))
send({ type: 'up' })
