import PQueue from 'p-queue'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { deferred } from '../../../test/support/deferred.js'
import { isReauthOptionsError, isReplayQueueFullError, ReplayQueueFullError } from './errors.js'
import { createReplayQueue } from './replay-queue.js'

async function flush(times = 10) {
  for (let i = 0; i < times; i++) await Promise.resolve()
}

describe('createReplayQueue (p-queue)', () => {
  afterEach(() => {
    vi.useRealTimers()
  })

  it('is bounded by default: the replay past 64 running and 10 000 waiting is rejected', async () => {
    const queue = createReplayQueue()
    const gate = deferred<void>()
    let running = 0
    const jobs = Array.from({ length: 64 + 10_000 }, () =>
      queue.run(() => {
        running++
        return gate.promise
      }),
    )
    await flush()
    expect(running).toBe(64)
    await expect(queue.run(async () => 'late')).rejects.toBeInstanceOf(ReplayQueueFullError)
    gate.resolve()
    await Promise.all(jobs)
  })

  it('never runs more than `concurrency` jobs at once, and starts waiting jobs in FIFO order', async () => {
    const queue = createReplayQueue({ concurrency: 2 })
    const gates = [0, 1, 2, 3, 4].map(() => deferred<number>())
    const started: number[] = []
    let active = 0
    let peak = 0
    const results = gates.map((gate, i) =>
      queue.run(async () => {
        started.push(i)
        active++
        peak = Math.max(peak, active)
        const value = await gate.promise
        active--
        return value
      }),
    )
    await flush()
    expect(started).toEqual([0, 1])

    gates[1]!.resolve(1)
    await flush()
    expect(started).toEqual([0, 1, 2])
    gates[0]!.resolve(0)
    await flush()
    expect(started).toEqual([0, 1, 2, 3])
    gates[4]!.resolve(4)
    gates[3]!.resolve(3)
    gates[2]!.resolve(2)
    await expect(Promise.all(results)).resolves.toEqual([0, 1, 2, 3, 4])
    expect(started).toEqual([0, 1, 2, 3, 4])
    expect(peak).toBe(2)
  })

  it('removes an aborted waiting job at once and rejects it with the signal reason', async () => {
    const own = new PQueue({ concurrency: 1 })
    const queue = createReplayQueue({ queue: own })
    const gate = deferred()
    const running = queue.run(() => gate.promise)
    const controller = new AbortController()
    let ran = false
    const waiting = queue.run(async () => {
      ran = true
    }, controller.signal)
    const after = queue.run(async () => 'after')
    expect(own.size).toBe(2)
    const reason = new Error('caller aborted')
    controller.abort(reason)
    await expect(waiting).rejects.toBe(reason)
    expect(own.size).toBe(1)
    gate.resolve()
    await running
    await expect(after).resolves.toBe('after')
    expect(ran).toBe(false)
  })

  it('rejects at once when the signal is already aborted', async () => {
    const queue = createReplayQueue()
    const reason = new Error('already')
    let ran = false
    await expect(
      queue.run(async () => {
        ran = true
      }, AbortSignal.abort(reason)),
    ).rejects.toBe(reason)
    expect(ran).toBe(false)
  })

  it('a started job settles with the signal reason when its signal aborts (p-queue), and still runs to its end', async () => {
    const queue = createReplayQueue({ concurrency: 1 })
    const gate = deferred<string>()
    const controller = new AbortController()
    let finished = false
    const job = queue.run(async () => {
      await gate.promise
      finished = true
    }, controller.signal)
    await flush()
    const reason = new Error('late')
    controller.abort(reason)
    await expect(job).rejects.toBe(reason)
    gate.resolve('done')
    await flush()
    expect(finished).toBe(true)
  })

  it('rejects with ReplayQueueFullError beyond maxQueued', async () => {
    const queue = createReplayQueue({ concurrency: 1, maxQueued: 1 })
    const gate = deferred()
    const first = queue.run(() => gate.promise)
    const second = queue.run(async () => 'second')
    const third = queue.run(async () => 'third')
    await expect(third).rejects.toBeInstanceOf(ReplayQueueFullError)
    await third.catch((error: unknown) => {
      expect(isReplayQueueFullError(error)).toBe(true)
      expect((error as Error).message).toContain('1')
    })
    gate.resolve()
    await first
    await expect(second).resolves.toBe('second')
  })

  it('maxQueued 0 still runs a replay that starts at once', async () => {
    const queue = createReplayQueue({ concurrency: 1, maxQueued: 0 })
    await expect(queue.run(async () => 'now')).resolves.toBe('now')
  })

  it('keeps going after a job that throws or rejects', async () => {
    const queue = createReplayQueue({ concurrency: 1 })
    const sync = queue.run(() => {
      throw new Error('sync throw')
    })
    const rejects = queue.run(async () => {
      throw new Error('async reject')
    })
    const next = queue.run(async () => 'next')
    await expect(sync).rejects.toThrow('sync throw')
    await expect(rejects).rejects.toThrow('async reject')
    await expect(next).resolves.toBe('next')
  })

  it("replays through the application's own p-queue keep its intervalCap rate limit", async () => {
    vi.useFakeTimers()
    const own = new PQueue({ intervalCap: 2, interval: 1_000 })
    const queue = createReplayQueue({ queue: own })
    const started: number[] = []
    const jobs = [0, 1, 2, 3, 4].map((i) =>
      queue.run(async () => {
        started.push(i)
        return i
      }),
    )
    // the application's own traffic shares the same budget
    await flush()
    expect(started).toEqual([0, 1])
    await vi.advanceTimersByTimeAsync(1_000)
    expect(started).toEqual([0, 1, 2, 3])
    await vi.advanceTimersByTimeAsync(1_000)
    expect(started).toEqual([0, 1, 2, 3, 4])
    await expect(Promise.all(jobs)).resolves.toEqual([0, 1, 2, 3, 4])
  })

  it('rejects a queue that is not a p-queue, and concurrency next to a queue', () => {
    for (const replay of [{ queue: {} }, { queue: new PQueue(), concurrency: 2 }]) {
      let thrown: unknown
      try {
        createReplayQueue(replay as never)
      } catch (error) {
        thrown = error
      }
      expect(isReauthOptionsError(thrown)).toBe(true)
      expect(String((thrown as Error).message)).toContain('replay.')
    }
  })
})
