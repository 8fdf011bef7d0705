/**
 * Model-based tests: fast-check generates interleavings of requests, responses (200, 401 for
 * the current or a stale token), grant outcomes (success with and without rotation, terminal,
 * transient, timeout), aborts, clock jumps and sign-ins; the driver (./driver.ts) plays them
 * against the engine's `run()` with deferreds and a fake clock and checks the invariants after
 * every step and after draining everything still pending.
 */
import type { EngineStats } from '@reauth/core'
import fc from 'fast-check'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { actionArbitrary, play } from './driver.js'

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'], now: 1_700_000_000_000 })
})
afterEach(() => {
  vi.useRealTimers()
})

type Coverage = EngineStats & { runs: number; requests: number; failed: number }

describe('engine model', () => {
  it.each([
    ['the default replay queue', undefined, Number(process.env.MODEL_RUNS ?? 1500)],
    ['a replay queue of one', 1, Number(process.env.MODEL_RUNS ?? 1000)],
  ])(
    'holds every invariant under random interleavings (%s)',
    async (_, concurrency, numRuns) => {
      const coverage: Partial<Coverage> = {}
      const add = (key: keyof Coverage, n: number) => {
        coverage[key] = (coverage[key] ?? 0) + n
      }
      await fc.assert(
        fc.asyncProperty(
          fc.array(actionArbitrary, { minLength: 1, maxLength: 60, size: 'max' }),
          async (actions) => {
            const model = await play(actions, concurrency)
            expect(model.violations, model.log.join('\n')).toEqual([])
            add('runs', 1)
            add('requests', model.requests.length)
            add('failed', model.requests.filter((r) => r.outcome === 'error').length)
            for (const [key, value] of Object.entries(model.engine.stats())) {
              add(key as keyof EngineStats, value)
            }
          },
        ),
        { numRuns },
      )
      // The runs reached every path the invariants are about.
      for (const key of [
        'grants',
        'proactive',
        'joins',
        'staleRetries',
        'replays',
        'failures',
        'sessionsExpired',
        'failed',
      ] as const) {
        expect(coverage[key], key).toBeGreaterThan(0)
      }
    },
    20_000,
  )

  it('a stale 401 is retried with the current token and makes no grant', async () => {
    const model = await play([
      { type: 'start', abortable: false },
      { type: 'start', abortable: false },
      { type: 'respond', pick: 0, status: 401 },
      { type: 'grant', pick: 0, outcome: 'rotate' },
      // request 1 still carries a1: its 401 is stale
      { type: 'respond', pick: 0, status: 401 },
    ])
    expect(model.violations).toEqual([])
    expect(model.engine.stats()).toMatchObject({ grants: 1, staleRetries: 1, replays: 2 })
    expect(model.sends.map((s) => s.authorization)).toEqual([
      'Bearer a1',
      'Bearer a1',
      'Bearer a2',
      'Bearer a2',
    ])
  })
})
