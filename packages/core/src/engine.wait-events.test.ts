import { afterEach, describe, expect, it, vi } from 'vitest'
import { steps } from '../../../test/support/steps.js'
import { createEngine, type EngineEvents } from './engine.js'
import { OAuthError } from './errors.js'
import type { TokenSet } from './types.js'

const first: TokenSet = { accessToken: 'a0', tokenType: 'Bearer', refreshToken: 'r0' }
const auth = (token: string) => `Bearer ${token}`

function gate() {
  let open!: (tokens: TokenSet) => void
  let fail!: (error: unknown) => void
  const promise = new Promise<TokenSet>((resolve, reject) => {
    open = resolve
    fail = reject
  })
  return { promise, open, fail }
}

function record(engine: ReturnType<typeof createEngine>) {
  const seen: Array<{ event: string; payload: unknown }> = []
  for (const event of [
    'refreshStart',
    'wait',
    'refresh',
    'refreshError',
    'sessionExpired',
  ] as const) {
    engine.on(event, (payload) => seen.push({ event, payload }))
  }
  const waits = () =>
    seen.filter((e) => e.event === 'wait').map((e) => e.payload as EngineEvents['wait'])
  return { seen, waits }
}

afterEach(() => {
  vi.useRealTimers()
})

describe('refreshStart and wait events', () => {
  it('a grant emits refreshStart before its outcome; each waiting request emits one wait with how long it waited', async () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    const grant = gate()
    let called!: () => void
    const refreshCalled = new Promise<void>((resolve) => {
      called = resolve
    })
    const engine = createEngine({
      tokens: first,
      refresh: () => {
        called()
        return grant.promise
      },
    })
    const { seen, waits } = record(engine)
    const a = steps(engine).recover(auth('a0'))
    const b = steps(engine).recover(auth('a0'))
    // no vi.waitFor here: with a fake Date it would move the clock while it polls
    await refreshCalled
    expect(seen.map((e) => e.event)).toEqual(['refreshStart'])
    vi.setSystemTime(Date.now() + 250)
    grant.open({ accessToken: 'a1', tokenType: 'Bearer' })
    expect(await Promise.all([a, b])).toEqual([auth('a1'), auth('a1')])
    // The waiters may be released (by the store's subscription) before `refresh` is emitted.
    expect(seen[0]?.event).toBe('refreshStart')
    expect(seen.map((e) => e.event).sort()).toEqual(['refresh', 'refreshStart', 'wait', 'wait'])
    expect(seen[0]?.payload).toEqual({ reason: 'reactive' })
    expect(waits()).toEqual([
      { reason: 'reactive', outcome: 'refreshed', durationMs: 250 },
      { reason: 'reactive', outcome: 'refreshed', durationMs: 250 },
    ])
  })

  it('a proactive wait, a failed refresh and an aborted wait are told apart', async () => {
    const grant = gate()
    const engine = createEngine({
      tokens: { ...first, expiresAt: Date.now() + 1_000 },
      refresh: () => grant.promise,
    })
    const { waits } = record(engine)
    const controller = new AbortController()
    const aborted = engine.getToken({ signal: controller.signal }).catch((e: unknown) => e)
    const failed = steps(engine)
      .recover(auth('a0'))
      .catch((e: unknown) => e)
    await vi.waitFor(() => expect(engine.stats().grants).toBe(1))
    controller.abort()
    expect(await aborted).toBe(controller.signal.reason)
    grant.fail(new OAuthError({ error: 'invalid_grant', status: 400 }))
    await failed
    expect(waits().map(({ reason, outcome }) => ({ reason, outcome }))).toEqual([
      { reason: 'proactive', outcome: 'aborted' },
      { reason: 'reactive', outcome: 'failed' },
    ])
  })

  it('a stale retry and a manual refresh are no waits', async () => {
    const engine = createEngine({
      tokens: first,
      refresh: async () => ({ accessToken: 'a1', tokenType: 'Bearer' }),
    })
    const { seen, waits } = record(engine)
    await engine.refresh()
    expect(await steps(engine).recover(auth('a0'))).toBe(auth('a1'))
    expect(waits()).toEqual([])
    expect(seen.map((e) => e.event)).toEqual(['refreshStart', 'refresh'])
  })
})
