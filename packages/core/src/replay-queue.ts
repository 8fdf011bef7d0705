import { ReplayQueueFullError } from './errors.js'

interface Job {
  start: () => void
  reject: (reason: unknown) => void
}

/** The default bound of replays waiting in the queue. */
export const DEFAULT_MAX_QUEUED = 10_000

/** Options of the replay queue. */
export interface ReplayQueueOptions {
  /** Replays running at once. Default 64. */
  concurrency?: number
  /**
   * Replays allowed to wait; more reject with `ReplayQueueFullError`. Default 10 000, so a
   * storm cannot queue without bound; `Infinity` turns the bound off.
   */
  maxQueued?: number
}

/**
 * A small bounded FIFO queue: at most `concurrency` jobs run at once. A waiting job whose
 * signal aborts leaves the queue at once. (p-queue does the same but is ESM-only and
 * needs Node 22 in its current major; this is the 40 lines we use of it.)
 */
export class ReplayQueue {
  readonly concurrency: number
  readonly maxQueued: number
  #running = 0
  readonly #waiting: Job[] = []

  constructor(options: ReplayQueueOptions = {}) {
    this.concurrency = options.concurrency ?? 64
    this.maxQueued = options.maxQueued ?? DEFAULT_MAX_QUEUED
  }

  /** Jobs running now. */
  get running(): number {
    return this.#running
  }

  /** Jobs waiting for a slot. */
  get size(): number {
    return this.#waiting.length
  }

  run<T>(fn: () => Promise<T>, signal?: AbortSignal | null): Promise<T> {
    if (signal?.aborted) return Promise.reject(signal.reason)
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => {
        const index = this.#waiting.indexOf(job)
        if (index !== -1) {
          this.#waiting.splice(index, 1)
          reject(signal?.reason)
        }
      }
      const job: Job = {
        start: () => {
          signal?.removeEventListener('abort', onAbort)
          this.#running++
          let result: Promise<T>
          try {
            result = fn()
          } catch (error) {
            result = Promise.reject(error)
          }
          result.then(resolve, reject).finally(() => {
            this.#running--
            this.#next()
          })
        },
        reject,
      }
      if (this.#running < this.concurrency) {
        job.start()
        return
      }
      if (this.#waiting.length >= this.maxQueued) {
        reject(new ReplayQueueFullError(this.maxQueued))
        return
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.#waiting.push(job)
    })
  }

  #next(): void {
    const job = this.#waiting.shift()
    job?.start()
  }
}
