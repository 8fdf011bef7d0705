import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { flush, HOUR, hourToken, T0 } from '../../../test/support/hour-token.js'
import { steps } from '../../../test/support/steps.js'
import { createEngine } from './engine.js'
import { RefreshError } from './errors.js'
import type { RefreshFunction, TokenSet } from './types.js'

const API = 'https://api.example.com'

function gatedRefresh() {
  const gates: Array<{ resolve: (t: TokenSet) => void; reject: (e: unknown) => void }> = []
  const fn = vi.fn<RefreshFunction>(
    () =>
      new Promise<TokenSet>((resolve, reject) => {
        gates.push({ resolve, reject })
      }),
  )
  return { fn, gates }
}

beforeEach(() => {
  vi.useFakeTimers({ now: T0 })
})
afterEach(() => {
  vi.useRealTimers()
})

describe('refresh-ahead (default options)', () => {
  it('a one-hour token valid for 8 more seconds is used at once; one grant runs in the background', async () => {
    const refresh = gatedRefresh()
    const engine = createEngine({
      refresh: refresh.fn,
      tokens: hourToken(1, 8_000),
      origins: [API],
    })
    const events = vi.fn()
    engine.on('refresh', events)
    const headers = await Promise.all(
      Array.from({ length: 100 }, () => steps(engine).authorize({ url: `${API}/me` })),
    )
    // Every request went at once with the current token, while the grant is still out.
    expect(new Set(headers)).toEqual(new Set(['Bearer at-1']))
    await flush()
    expect(refresh.fn).toHaveBeenCalledTimes(1)
    expect(engine.stats()).toMatchObject({ grants: 1, background: 1, proactive: 0, joins: 0 })
    refresh.gates[0]?.resolve({ ...hourToken(2, HOUR), issuedAt: T0 })
    await flush()
    expect(events).toHaveBeenCalledWith(
      expect.objectContaining({ reason: 'background', adopted: false }),
    )
    await expect(steps(engine).authorize({ url: `${API}/me` })).resolves.toBe('Bearer at-2')
    expect(refresh.fn).toHaveBeenCalledTimes(1)
  })

  it('outside the 60 s window nothing happens; inside the 5 s margin requests wait', async () => {
    const refresh = gatedRefresh()
    const engine = createEngine({
      refresh: refresh.fn,
      tokens: hourToken(1, 60_001),
      origins: [API],
    })
    await expect(steps(engine).authorize({ url: `${API}/me` })).resolves.toBe('Bearer at-1')
    expect(refresh.fn).not.toHaveBeenCalled()
    await vi.advanceTimersByTimeAsync(55_001) // 5 s left: inside the margin
    let settled = false
    const waiting = steps(engine)
      .authorize({ url: `${API}/me` })
      .then((value) => {
        settled = true
        return value
      })
    await flush()
    expect(settled).toBe(false)
    expect(engine.stats()).toMatchObject({ proactive: 1, background: 0 })
    refresh.gates[0]?.resolve(hourToken(2, HOUR))
    await expect(waiting).resolves.toBe('Bearer at-2')
  })

  it('a failed background grant fails no request while the token is valid, and is retried with backoff', async () => {
    const refresh = gatedRefresh()
    const engine = createEngine({
      refresh: refresh.fn,
      tokens: hourToken(1, 30_000),
      origins: [API],
    })
    const errors = vi.fn()
    engine.on('refreshError', errors)
    await expect(steps(engine).authorize({ url: `${API}/me` })).resolves.toBe('Bearer at-1')
    refresh.gates[0]?.reject(new TypeError('fetch failed'))
    await flush()
    expect(errors).toHaveBeenCalledWith(
      expect.objectContaining({ reason: 'background', error: expect.any(RefreshError) }),
    )
    // Requests go on with the valid token; no new grant before the backoff (1 s) has passed.
    await expect(steps(engine).authorize({ url: `${API}/me` })).resolves.toBe('Bearer at-1')
    expect(refresh.fn).toHaveBeenCalledTimes(1)
    await vi.advanceTimersByTimeAsync(1_000)
    await expect(steps(engine).authorize({ url: `${API}/me` })).resolves.toBe('Bearer at-1')
    await flush()
    expect(refresh.fn).toHaveBeenCalledTimes(2)
    refresh.gates[1]?.reject(new TypeError('fetch failed'))
    await flush()
    await vi.advanceTimersByTimeAsync(1_999) // the second backoff is 2 s
    await steps(engine).authorize({ url: `${API}/me` })
    expect(refresh.fn).toHaveBeenCalledTimes(2)
    await vi.advanceTimersByTimeAsync(1)
    await steps(engine).authorize({ url: `${API}/me` })
    await flush()
    expect(refresh.fn).toHaveBeenCalledTimes(3)
    refresh.gates[2]?.resolve(hourToken(2, HOUR))
    await flush()
    await expect(steps(engine).authorize({ url: `${API}/me` })).resolves.toBe('Bearer at-2')
  })

  it('custom thresholds: refreshAhead and expiryMargin', async () => {
    const refresh = gatedRefresh()
    const engine = createEngine({
      refresh: refresh.fn,
      tokens: hourToken(1, 300_000),
      refreshAhead: 600_000,
      expiryMargin: 1_000,
      origins: [API],
    })
    await expect(steps(engine).authorize({ url: `${API}/me` })).resolves.toBe('Bearer at-1')
    expect(engine.stats().background).toBe(1)
    expect(() => createEngine({ refresh: refresh.fn, refreshAhead: -1 })).toThrow(/"refreshAhead"/)
    expect(() =>
      createEngine({ refresh: refresh.fn, expiryMargin: Number.POSITIVE_INFINITY }),
    ).toThrow(/"expiryMargin"/)
  })
})
