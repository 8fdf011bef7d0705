/**
 * Named regressions found by the model (./engine.model.test.ts): each replays the shrunk
 * counterexample through the driver, then states the bug directly against the engine.
 */
import { createEngine, isSessionExpiredError, OAuthError, type TokenSet } from '@reauth/core'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { deferred } from '../support/deferred.js'
import { steps } from '../support/steps.js'
import { play } from './driver.js'

const API = 'https://api.model.test'
const first: TokenSet = { accessToken: 'a1', tokenType: 'Bearer', refreshToken: 'r1' }
const second: TokenSet = { accessToken: 'a2', tokenType: 'Bearer', refreshToken: 'r2' }

describe('model regressions', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'], now: 1_700_000_000_000 })
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  describe('a terminal failure of a grant started before setTokens cleared the new session', () => {
    it('seed -1438696347 (path 239:5:6:6:6:8:9:6)', async () => {
      const model = await play([
        { type: 'clock', ms: 70_000 },
        { type: 'start', abortable: false },
        { type: 'setTokens' },
        { type: 'grant', pick: 0, outcome: 'invalid_client' },
      ])
      expect(model.violations).toEqual([])
    })

    it('setTokens, then the old grant fails with invalid_client: the new tokens stay, waiters use them', async () => {
      vi.useRealTimers()
      const grant = deferred<TokenSet>()
      const engine = createEngine({ tokens: first, refresh: () => grant.promise })
      let expired = 0
      engine.on('sessionExpired', () => expired++)
      const waiting = engine.refresh()
      await vi.waitFor(() => expect(engine.stats().grants).toBe(1))
      await engine.setTokens(second)
      grant.reject(new OAuthError({ error: 'invalid_client', status: 401 }))
      expect((await waiting).accessToken).toBe('a2')
      expect((await engine.getToken())?.accessToken).toBe('a2')
      expect(expired).toBe(0)
    })

    it('clear() during a grant that then fails: the waiter gets SessionExpiredError, later requests go anonymous', async () => {
      vi.useRealTimers()
      const grant = deferred<TokenSet>()
      const engine = createEngine({ tokens: first, refresh: () => grant.promise, origins: [API] })
      const waiting = engine.refresh().catch((e: unknown) => e)
      await vi.waitFor(() => expect(engine.stats().grants).toBe(1))
      await engine.clear()
      grant.reject(new OAuthError({ error: 'invalid_client', status: 401 }))
      expect(isSessionExpiredError(await waiting)).toBe(true)
      // signed out, not an expired session: no fail-fast state
      expect(await steps(engine).authorize({ url: `${API}/x` })).toBeUndefined()
      expect(engine.stats().sessionsExpired).toBe(0)
    })
  })

  describe('a replay waiting in the queue went out with the token of a session that had ended', () => {
    it('seed -1257252263 (path 164:3:1:0:19:30:37:43:49:35:43:47:28:38:42:44:50:51:51)', async () => {
      const model = await play(
        [
          { type: 'start', abortable: false },
          { type: 'start', abortable: false },
          { type: 'setTokens' },
          { type: 'respond', pick: 0, status: 401 },
          { type: 'respond', pick: 0, status: 401 },
          { type: 'clock', ms: 70_000 },
          { type: 'start', abortable: false },
          { type: 'grant', pick: 0, outcome: 'invalid_grant' },
          { type: 'start', abortable: false },
        ],
        1,
      )
      expect(model.violations).toEqual([])
    })

    it.each([
      ['a terminal failure', 'terminal'],
      ['a sign-out', 'clear'],
    ])('a replay queued behind another is not sent after %s', async (_, how) => {
      vi.useRealTimers()
      const grant = deferred<TokenSet>()
      const engine = createEngine({
        tokens: first,
        refresh: () => grant.promise,
        replay: { concurrency: 1 },
      })
      const busy = deferred<string>()
      const sent: string[] = []
      const running = steps(engine).replay(() => busy.promise)
      const queued = steps(engine)
        .replay(async () => {
          sent.push('Bearer a1')
          return 'replayed'
        })
        .catch((e: unknown) => e)
      if (how === 'terminal') {
        grant.reject(new OAuthError({ error: 'invalid_grant', status: 400 }))
        await engine.refresh().catch(() => undefined)
      } else {
        await engine.clear()
      }
      busy.resolve('done')
      expect(await running).toBe('done')
      expect(isSessionExpiredError(await queued)).toBe(true)
      expect(sent).toEqual([])
    })
  })
})
