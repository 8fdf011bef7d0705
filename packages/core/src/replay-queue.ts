import PQueue from 'p-queue'
import { ReauthOptionsError, ReplayQueueFullError } from './errors.js'

/** The default bound of replays waiting in the queue. */
export const DEFAULT_MAX_QUEUED = 10_000

/**
 * The parts of a p-queue (v9) the engine uses: pass your application's own `PQueue` as
 * `replay.queue` and replays share its `concurrency` and `intervalCap` / `interval` rate limit.
 */
export interface ReplayQueueLike {
  add<T>(
    task:
      | ((options: { signal?: AbortSignal | undefined }) => PromiseLike<T>)
      | ((options: { signal?: AbortSignal | undefined }) => T),
    options?: { signal?: AbortSignal | undefined },
  ): Promise<T>
  /** Tasks waiting to start. */
  readonly size: number
  /** Tasks running. */
  readonly pending: number
  readonly concurrency: number
  readonly isPaused: boolean
}

/** Options of the queue that replays requests after a refresh (`replay`). */
export interface ReplayQueueOptions {
  /** Replays running at once (the default queue). Default 64. Not with `queue`. */
  concurrency?: number
  /**
   * Replays allowed to wait; more reject with `ReplayQueueFullError`. Default 10 000, so a
   * storm cannot queue without bound; `Infinity` turns the bound off.
   */
  maxQueued?: number
  /** Your own p-queue (v9): replays wait in it with the rest of your traffic and its rate limit. */
  queue?: ReplayQueueLike
}

/** Runs replays through a p-queue, bounded by `maxQueued`; a waiting replay leaves it when its signal aborts. */
export interface ReplayQueue {
  run<T>(job: () => Promise<T>, signal?: AbortSignal | null): Promise<T>
}

function isQueue(value: unknown): value is ReplayQueueLike {
  const queue = value as Partial<ReplayQueueLike> | null
  return (
    typeof queue === 'object' &&
    queue !== null &&
    typeof queue.add === 'function' &&
    typeof queue.size === 'number'
  )
}

/**
 * The replay queue: the given p-queue, or a new one with `concurrency` (default 64). A replay
 * that would wait while `maxQueued` replays already wait is rejected with
 * `ReplayQueueFullError`; one whose signal aborts while it waits leaves the queue at once
 * (p-queue's signal support) and rejects with the signal's reason.
 *
 * @example
 * const queue = createReplayQueue({ queue: new PQueue({ intervalCap: 10, interval: 1_000 }) })
 * await queue.run(() => fetch(url), signal)
 */
export function createReplayQueue(options: ReplayQueueOptions = {}): ReplayQueue {
  if (options.queue !== undefined) {
    if (!isQueue(options.queue)) {
      throw new ReauthOptionsError('"replay.queue" must be a p-queue (new PQueue(…))')
    }
    if (options.concurrency !== undefined) {
      throw new ReauthOptionsError(
        '"replay.concurrency" cannot be combined with "replay.queue": set it on your queue',
      )
    }
  }
  const queue: ReplayQueueLike =
    options.queue ?? new PQueue({ concurrency: options.concurrency ?? 64 })
  const maxQueued = options.maxQueued ?? DEFAULT_MAX_QUEUED
  return {
    run(job, signal) {
      if (signal?.aborted) return Promise.reject(signal.reason)
      const startsNow = queue.size === 0 && queue.pending < queue.concurrency && !queue.isPaused
      if (!startsNow && queue.size >= maxQueued) {
        return Promise.reject(new ReplayQueueFullError(maxQueued))
      }
      return queue.add(job, signal ? { signal } : {})
    },
  }
}
