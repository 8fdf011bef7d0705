/**
 * The few node-redis methods `@reauth/redis` uses. A client from `createClient()` (node-redis
 * v5 or v6) fits; so does any client with the same methods.
 *
 * @example
 * import { createClient } from 'redis'
 * const client: RedisClientLike = await createClient({ url: 'redis://127.0.0.1:6379' }).connect()
 */
export interface RedisClientLike {
  /** Send one command; `timeout` (ms) rejects it, and drops it from the offline queue. */
  sendCommand(args: ReadonlyArray<string>, options?: { timeout?: number }): Promise<unknown>
  /** A second connection with the same options: node-redis needs one for `SUBSCRIBE`. */
  duplicate(): RedisSubscriberLike
}

/**
 * The connection `@reauth/redis` subscribes on: `client.duplicate()`, opened and closed by
 * reauth itself.
 *
 * @example
 * const subscriber: RedisSubscriberLike = client.duplicate()
 */
export interface RedisSubscriberLike {
  connect(): Promise<unknown>
  subscribe(channel: string, listener: (message: string, channel: string) => unknown): Promise<void>
  unsubscribe(channel: string): Promise<void>
  on(event: 'error', listener: (error: Error) => void): unknown
  destroy(): void
}

/** Run one command, bounded by `timeout` ms even while the client is reconnecting. */
export function command(
  client: RedisClientLike,
  args: ReadonlyArray<string>,
  timeout: number,
): Promise<unknown> {
  // node-redis already bounds a command with `timeout`; the race guards clients that ignore it.
  let timer: ReturnType<typeof setTimeout> | undefined
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`Redis ${args[0]} timed out after ${timeout} ms`)),
      timeout + 50,
    )
  })
  return Promise.race([client.sendCommand(args, { timeout }), bound]).finally(() =>
    clearTimeout(timer),
  )
}

type Listener = (message: string) => void

/**
 * One subscriber connection per client, shared by every store and lock on that client, and
 * closed when nothing listens any more.
 */
class Subscriber {
  readonly #client: RedisClientLike
  readonly #channels = new Map<string, { listeners: Set<Listener>; ready: Promise<void> }>()
  #connection: Promise<RedisSubscriberLike> | undefined

  constructor(client: RedisClientLike) {
    this.#client = client
  }

  #connect(): Promise<RedisSubscriberLike> {
    if (!this.#connection) {
      const subscriber = this.#client.duplicate()
      // Our own connection: its errors (Redis down, reconnecting) must never crash the process.
      subscriber.on('error', () => {})
      this.#connection = subscriber.connect().then(
        () => subscriber,
        (error: unknown) => {
          this.#connection = undefined
          try {
            subscriber.destroy()
          } catch {}
          throw error
        },
      )
    }
    return this.#connection
  }

  /** Listen on `channel`; `ready` settles once Redis confirmed the subscription. */
  listen(channel: string, listener: Listener): { ready: Promise<void>; stop: () => void } {
    let entry = this.#channels.get(channel)
    if (!entry) {
      const listeners = new Set<Listener>()
      const dispatch = (message: string) => {
        for (const each of [...listeners]) each(message)
      }
      const ready = this.#connect().then((subscriber) => subscriber.subscribe(channel, dispatch))
      ready.catch(() => {
        // A failed subscription is retried by the next listener on this channel.
        if (this.#channels.get(channel)?.ready === ready) this.#channels.delete(channel)
      })
      entry = { listeners, ready }
      this.#channels.set(channel, entry)
    }
    const current = entry
    current.listeners.add(listener)
    let stopped = false
    return {
      ready: current.ready,
      stop: () => {
        if (stopped) return
        stopped = true
        current.listeners.delete(listener)
        if (current.listeners.size > 0 || this.#channels.get(channel) !== current) return
        this.#channels.delete(channel)
        const connection = this.#connection
        if (this.#channels.size === 0) {
          this.#connection = undefined
          connection?.then((subscriber) => subscriber.destroy()).catch(() => {})
        } else {
          connection?.then((subscriber) => subscriber.unsubscribe(channel)).catch(() => {})
        }
      },
    }
  }
}

const subscribers = new WeakMap<RedisClientLike, Subscriber>()

/** The shared subscriber of `client`. */
export function subscriberOf(client: RedisClientLike): Subscriber {
  let subscriber = subscribers.get(client)
  if (!subscriber) {
    subscriber = new Subscriber(client)
    subscribers.set(client, subscriber)
  }
  return subscriber
}

/** True for something shaped like a node-redis client. */
export function isRedisClient(value: unknown): value is RedisClientLike {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as RedisClientLike).sendCommand === 'function' &&
    typeof (value as RedisClientLike).duplicate === 'function'
  )
}
