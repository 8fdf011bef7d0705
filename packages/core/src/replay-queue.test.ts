import { describe, expect, it } from 'vitest'
import { isReplayQueueFullError, ReplayQueueFullError } from './errors.js'
import { ReplayQueue } from './replay-queue.js'

function deferred<T = void>() {
  let resolve!: (value: T) => void
  let reject!: (reason: unknown) => void
  const promise = new Promise<T>((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

async function flush(times = 10) {
  for (let i = 0; i < times; i++) await Promise.resolve()
}

describe('ReplayQueue', () => {
  it('has safe defaults', () => {
    const queue = new ReplayQueue()
    expect(queue.concurrency).toBe(64)
    expect(queue.maxQueued).toBe(10_000)
  })

  it('is bounded by default: the replay past 64 running and 10 000 waiting is rejected', async () => {
    const queue = new ReplayQueue()
    const gate = deferred<void>()
    const jobs = Array.from({ length: 64 + 10_000 }, () => queue.run(() => gate.promise))
    await expect(queue.run(async () => 'late')).rejects.toBeInstanceOf(ReplayQueueFullError)
    gate.resolve()
    await Promise.all(jobs)
  })

  it('never runs more than `concurrency` jobs at once, and starts waiting jobs in FIFO order', async () => {
    const queue = new ReplayQueue({ concurrency: 2 })
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
    expect(queue.running).toBe(2)
    expect(queue.size).toBe(3)

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
    expect(queue.running).toBe(0)
    expect(queue.size).toBe(0)
  })

  it('removes an aborted waiting job at once and rejects it with the signal reason', async () => {
    const queue = new ReplayQueue({ concurrency: 1 })
    const gate = deferred()
    const running = queue.run(() => gate.promise)
    const controller = new AbortController()
    let ran = false
    const waiting = queue.run(async () => {
      ran = true
    }, controller.signal)
    const after = queue.run(async () => 'after')
    expect(queue.size).toBe(2)
    const reason = new Error('caller aborted')
    controller.abort(reason)
    await expect(waiting).rejects.toBe(reason)
    expect(queue.size).toBe(1)
    gate.resolve()
    await running
    await expect(after).resolves.toBe('after')
    expect(ran).toBe(false)
  })

  it('rejects at once when the signal is already aborted', async () => {
    const queue = new ReplayQueue()
    const reason = new Error('already')
    let ran = false
    await expect(
      queue.run(async () => {
        ran = true
      }, AbortSignal.abort(reason)),
    ).rejects.toBe(reason)
    expect(ran).toBe(false)
  })

  it('does not abort a job that already started', async () => {
    const queue = new ReplayQueue({ concurrency: 1 })
    const gate = deferred<string>()
    const controller = new AbortController()
    const job = queue.run(() => gate.promise, controller.signal)
    controller.abort(new Error('late'))
    gate.resolve('done')
    await expect(job).resolves.toBe('done')
  })

  it('rejects with ReplayQueueFullError beyond maxQueued', async () => {
    const queue = new ReplayQueue({ concurrency: 1, maxQueued: 1 })
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

  it('keeps going after a job that throws or rejects', async () => {
    const queue = new ReplayQueue({ concurrency: 1 })
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
    expect(queue.running).toBe(0)
  })
})
