import { describe, expect, it } from 'vitest'
import { deferred } from '../../../test/support/deferred.js'
import { createLocalLock } from './local-lock.js'

async function flush(times = 10) {
  for (let i = 0; i < times; i++) await Promise.resolve()
}

describe('createLocalLock', () => {
  it('serialises work under one key', async () => {
    const lock = createLocalLock()
    const events: string[] = []
    const first = deferred<string>()
    const a = lock.run('k', async () => {
      events.push('a:start')
      const value = await first.promise
      events.push('a:end')
      return value
    })
    const b = lock.run('k', async () => {
      events.push('b:start')
      return 'b'
    })
    await flush()
    expect(events).toEqual(['a:start'])
    first.resolve('a')
    await expect(a).resolves.toBe('a')
    await expect(b).resolves.toBe('b')
    expect(events).toEqual(['a:start', 'a:end', 'b:start'])
  })

  it('runs different keys concurrently', async () => {
    const lock = createLocalLock()
    const gate = deferred()
    const events: string[] = []
    const a = lock.run('one', async () => {
      events.push('one')
      await gate.promise
    })
    const b = lock.run('two', async () => {
      events.push('two')
    })
    await b
    expect(events).toEqual(['one', 'two'])
    gate.resolve()
    await a
  })

  it('does not let a rejection block the next holder, and passes the rejection to its caller', async () => {
    const lock = createLocalLock()
    const failure = new Error('boom')
    const gate = deferred()
    const a = lock.run('k', async () => {
      await gate.promise
      throw failure
    })
    const b = lock.run('k', async () => 'next')
    gate.resolve()
    await expect(a).rejects.toBe(failure)
    await expect(b).resolves.toBe('next')
    // And the lock is still usable afterwards.
    await expect(lock.run('k', async () => 3)).resolves.toBe(3)
  })

  it('keeps FIFO order among many waiters', async () => {
    const lock = createLocalLock()
    const order: number[] = []
    await Promise.all(
      [0, 1, 2, 3, 4].map((i) =>
        lock.run('k', async () => {
          order.push(i)
        }),
      ),
    )
    expect(order).toEqual([0, 1, 2, 3, 4])
  })
})
