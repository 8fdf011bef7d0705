import type { LockManagerLike } from '../src/web-lock.js'

/**
 * A small in-memory Web Locks `LockManager` (exclusive and shared modes, FIFO per name,
 * `signal`, `query`) for unit tests under Node, which has no `navigator.locks`. One instance
 * stands for one origin: give it to several engines and they behave like tabs.
 */
export interface FakeLocks extends LockManagerLike {
  /** Names requested, in order. */
  readonly requested: string[]
  /** Is the lock `name` held now? */
  held(name: string): boolean
  /** How many requests for `name` wait now. */
  waiting(name: string): number
  /** Take the lock as another tab would; resolves once held, with the function that releases it. */
  hold(name: string): Promise<() => void>
  query(): Promise<{ held: Array<{ name: string; mode: string }> }>
}

type Mode = 'exclusive' | 'shared'

export function createFakeLocks(): FakeLocks {
  const holders = new Map<string, { mode: Mode; count: number }>()
  const queues = new Map<string, Array<{ mode: Mode; grant: () => void }>>()
  const requested: string[] = []

  function grantable(name: string, mode: Mode): boolean {
    const holder = holders.get(name)
    return !holder || (holder.mode === 'shared' && mode === 'shared')
  }

  function next(name: string): void {
    const queue = queues.get(name) ?? []
    while (queue.length > 0 && grantable(name, queue[0]!.mode)) queue.shift()!.grant()
    if (queue.length === 0) queues.delete(name)
  }

  const locks: FakeLocks = {
    requested,
    held: (name) => holders.has(name),
    waiting: (name) => queues.get(name)?.length ?? 0,
    async query() {
      return { held: [...holders].map(([name, { mode }]) => ({ name, mode })) }
    },
    request<T>(
      name: string,
      options: { mode?: Mode; signal?: AbortSignal },
      callback: (lock: unknown) => Promise<T>,
    ): Promise<T> {
      requested.push(name)
      const { signal, mode = 'exclusive' } = options
      return new Promise<T>((resolve, reject) => {
        if (signal?.aborted) {
          reject(signal.reason)
          return
        }
        const grant = () => {
          signal?.removeEventListener('abort', onAbort)
          const holder = holders.get(name)
          holders.set(name, { mode, count: (holder?.count ?? 0) + 1 })
          Promise.resolve()
            .then(() => callback({ name, mode }))
            .then(resolve, reject)
            .finally(() => {
              const now = holders.get(name)
              if (now && now.count > 1) now.count--
              else holders.delete(name)
              next(name)
            })
        }
        const entry = { mode, grant }
        const onAbort = () => {
          const queue = queues.get(name) ?? []
          const index = queue.indexOf(entry)
          if (index >= 0) queue.splice(index, 1)
          if (queue.length === 0) queues.delete(name)
          reject(signal?.reason)
        }
        signal?.addEventListener('abort', onAbort, { once: true })
        if (!queues.has(name) && grantable(name, mode)) grant()
        else queues.set(name, [...(queues.get(name) ?? []), entry])
      })
    },
    hold(name) {
      return new Promise((acquired) => {
        void locks.request(
          name,
          {},
          () =>
            new Promise<void>((release) => {
              acquired(() => release())
            }),
        )
      })
    },
  }
  return locks
}
