import {
  createEngine,
  OAuthError,
  ReauthOptionsError,
  SessionExpiredError,
  type StoredSession,
  type TokenSet,
} from '@reauth/core'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { steps } from '../../../test/support/steps.js'
import { createFakeLocks } from '../test/fake-locks.js'
import { createBroadcastStore } from './broadcast-store.js'
import { isTabSyncError } from './errors.js'
import { createStampMarks } from './stamp.js'
import { createWebLock } from './web-lock.js'

const set = (n: number): TokenSet => ({
  accessToken: `secret-at-${n}`,
  tokenType: 'Bearer',
  refreshToken: `secret-rt-${n}`,
})

const opened: Array<{ close(): void }> = []
let channels = 0
function channelName() {
  return `test-${channels++}`
}
function store(options: Parameters<typeof createBroadcastStore>[0] = {}) {
  const created = createBroadcastStore({ locks: createFakeLocks(), ...options })
  opened.push(created)
  return created
}
function raw(name: string) {
  const channel = new BroadcastChannel(name)
  opened.push(channel)
  return channel
}
/** The next change a store reports, as a promise. */
function nextChange(target: { subscribe(l: (t: StoredSession | undefined) => void): () => void }) {
  return new Promise<StoredSession | undefined>((resolve) => {
    const off = target.subscribe((tokens) => {
      off()
      resolve(tokens)
    })
  })
}

afterEach(() => {
  for (const item of opened.splice(0)) item.close()
  vi.useRealTimers()
  vi.unstubAllGlobals()
})

describe('createBroadcastStore', () => {
  it('a set in one tab reaches the other tabs: get() and subscribe', async () => {
    const name = channelName()
    const a = store({ channel: name })
    const b = store({ channel: name })
    const seen = nextChange(b)
    await a.set(set(1))
    await expect(seen).resolves.toEqual(set(1))
    expect(b.get()).toEqual(set(1))
    expect(a.get()).toEqual(set(1))
  })

  it('a clear in one tab clears the others', async () => {
    const name = channelName()
    const a = store({ channel: name, initial: set(1) })
    const b = store({ channel: name })
    await expect(b.ready()).resolves.toEqual(set(1))
    const seen = nextChange(b)
    await a.clear()
    await expect(seen).resolves.toBeUndefined()
    expect(b.get()).toBeUndefined()
  })

  it('a new tab gets the set from an open one (ready)', async () => {
    const name = channelName()
    store({ channel: name, initial: set(3) })
    const late = store({ channel: name })
    await expect(late.ready()).resolves.toEqual(set(3))
    expect(late.get()).toEqual(set(3))
  })

  it('ready() gives undefined after its timeout when no tab has tokens', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    const alone = store({ channel: channelName() })
    const ready = alone.ready({ timeout: 300 })
    await vi.advanceTimersByTimeAsync(300)
    await expect(ready).resolves.toBeUndefined()
  })

  it('never goes back to an older set, whatever order the messages arrive in', async () => {
    const name = channelName()
    const b = store({ channel: name })
    const seen: Array<StoredSession | undefined> = []
    b.subscribe((tokens) => seen.push(tokens))
    const sender = raw(name)
    const w = 'other-tab'
    sender.postMessage({ type: 'set', stamp: { time: 20, writer: w }, tokens: set(2) })
    sender.postMessage({ type: 'set', stamp: { time: 10, writer: w }, tokens: set(1) })
    sender.postMessage({ type: 'clear', stamp: { time: 15, writer: w } })
    const last = vi.fn()
    b.subscribe(last)
    sender.postMessage({ type: 'set', stamp: { time: 30, writer: w }, tokens: set(3) })
    await vi.waitFor(() => expect(last).toHaveBeenCalled())
    expect(seen).toEqual([set(2), set(3)])
    expect(b.get()).toEqual(set(3))
  })

  it('ignores messages that are not token sets, and never logs their content', async () => {
    const name = channelName()
    const logger = { debug: vi.fn(), info: vi.fn(), warn: vi.fn(), error: vi.fn() }
    const b = store({ channel: name, logger })
    const sender = raw(name)
    const stamp = { time: 50, writer: 'x' }
    sender.postMessage('nonsense')
    sender.postMessage({
      type: 'set',
      stamp,
      tokens: { accessToken: 'secret-x', tokenType: 'MAC' },
    })
    sender.postMessage({ type: 'set', stamp: { time: 'soon' }, tokens: set(9) })
    sender.postMessage({ type: 'evil', stamp, tokens: set(9) })
    const seen = nextChange(b)
    sender.postMessage({ type: 'set', stamp: { time: 60, writer: 'x' }, tokens: set(4) })
    await expect(seen).resolves.toEqual(set(4))
    const lines = JSON.stringify(
      [logger.debug, logger.info, logger.warn, logger.error].map((f) => f.mock.calls),
    )
    expect(lines).not.toContain('secret')
  })

  it('a local write notifies this tab’s listeners too (several engines in one tab)', async () => {
    const a = store({ channel: channelName() })
    const seen = nextChange(a)
    await a.set(set(5))
    await expect(seen).resolves.toEqual(set(5))
  })

  it('persist: a reload of the tab keeps its copy; an invalid stored value is ignored and logged without content', async () => {
    const backing = new Map<string, string>()
    const storage = {
      getItem: (k: string) => backing.get(k) ?? null,
      setItem: (k: string, v: string) => void backing.set(k, v),
      removeItem: (k: string) => void backing.delete(k),
    } as Storage
    const first = store({ channel: channelName(), persist: storage })
    await first.set(set(6))
    first.close()
    const reloaded = store({ channel: channelName(), persist: storage })
    expect(reloaded.get()).toEqual(set(6))
    await reloaded.clear()
    expect(backing.size).toBe(0)

    backing.set('reauth.tokens', '{"tokens":{"accessToken":"secret-bad"},"stamp":{}}')
    const logger = { warn: vi.fn() }
    const broken = store({ channel: channelName(), persist: storage, logger })
    expect(broken.get()).toBeUndefined()
    expect(logger.warn).toHaveBeenCalledTimes(1)
    expect(String(logger.warn.mock.calls[0]?.[0])).not.toContain('secret')
  })

  it('without BroadcastChannel: a memory store for this tab, said once in the log', async () => {
    vi.stubGlobal('BroadcastChannel', undefined)
    const logger = { warn: vi.fn() }
    const alone = createBroadcastStore({
      logger,
      locks: createFakeLocks(),
    })
    await alone.set(set(7))
    await alone.set(set(8))
    expect(alone.get()).toEqual(set(8))
    expect(logger.warn).toHaveBeenCalledTimes(1)
    expect(logger.warn.mock.calls[0]?.[0]).toMatch(/BroadcastChannel is not available/)
    alone.close()
  })

  it('validates its options', () => {
    expect(() => createBroadcastStore({ channel: '' })).toThrow('"channel"')
    expect(() => createBroadcastStore({ initial: { accessToken: 'x' } as never })).toThrow(
      ReauthOptionsError,
    )
    expect(() => createBroadcastStore({ persist: {} as never })).toThrow('"persist"')
    expect(() => createBroadcastStore({ catchUpTimeout: 0 })).toThrow('"catchUpTimeout"')
  })
})

describe('catchUp: the lock holder learns of a newer set whose message is still on the way', () => {
  it('waits until the newer set arrives', async () => {
    const locks = createFakeLocks()
    const name = channelName()
    const b = store({ channel: name, locks })
    await b.set(set(1))
    // Another tab published the mark of a newer set; its message comes later.
    const marks = createStampMarks(locks, `reauth-store:${name}`)
    opened.push(marks)
    const stamp = { time: Date.now() + 60_000, writer: 'other' }
    await marks.publish(stamp)
    let caughtUp = false
    const waiting = b.catchUp().then(() => {
      caughtUp = true
    })
    await locks.query()
    expect(caughtUp).toBe(false)
    raw(name).postMessage({ type: 'set', stamp, tokens: set(2) })
    await waiting
    expect(b.get()).toEqual(set(2))
  })

  it('rejects after catchUpTimeout when it never arrives; resolves at once when up to date', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    const locks = createFakeLocks()
    const name = channelName()
    const b = store({ channel: name, locks, catchUpTimeout: 1_000 })
    await b.set(set(1))
    await expect(b.catchUp()).resolves.toBeUndefined()
    const marks = createStampMarks(locks, `reauth-store:${name}`)
    opened.push(marks)
    await marks.publish({ time: Date.now() + 60_000, writer: 'other' })
    const caught = b.catchUp().catch((error: unknown) => error)
    await vi.advanceTimersByTimeAsync(1_000)
    const error = await caught
    expect(String((error as Error).message)).toMatch(/did not reach this tab within 1000 ms/)
    expect(isTabSyncError(error)).toBe(true)
    expect(error).toMatchObject({ code: 'CATCH_UP_TIMEOUT' })
  })

  it('the marks follow the newest set: one per tab, the older one released', async () => {
    const locks = createFakeLocks()
    const name = channelName()
    const a = store({ channel: name, locks })
    await a.set(set(1))
    await a.set(set(2))
    const held = (await locks.query()).held.filter((l) =>
      l.name.startsWith(`reauth-store:${name}#`),
    )
    expect(held).toHaveLength(1)
    expect(held[0]?.mode).toBe('shared')
  })
})

describe('with an engine', () => {
  it('a refresh waiting on the lock resolves as soon as another tab’s set arrives', async () => {
    const locks = createFakeLocks()
    const name = channelName()
    const store1 = store({ channel: name, locks, initial: set(1) })
    const refresh = vi.fn()
    const engine = createEngine({
      refresh,
      store: store1,
      lock: { run: (_key, fn) => locks.request('held-elsewhere', {}, fn) },
    })
    const release = await locks.hold('held-elsewhere')
    const header = steps(engine).recover('Bearer secret-at-1')
    await vi.waitFor(() => expect(locks.waiting('held-elsewhere')).toBe(1))
    const other = store({ channel: name, locks })
    await other.ready()
    await other.set(set(2))
    await expect(header).resolves.toBe('Bearer secret-at-2')
    release()
    await vi.waitFor(() => expect(engine.stats().adopted).toBe(1))
    expect(refresh).not.toHaveBeenCalled()
  })
})

const end: StoredSession = {
  ended: {
    error: 'invalid_grant',
    errorDescription: 'revoked',
    status: 400,
    at: 1_700_000_000_000,
  },
}

/** Ask the tabs on `name` for their set through a raw channel; resolves with `count` answers. */
function answers(sender: BroadcastChannel, count: number) {
  return new Promise<Array<{ stamp: { time: number }; tokens?: unknown }>>((resolve) => {
    const seen: Array<{ stamp: { time: number }; tokens?: unknown }> = []
    sender.onmessage = (event: MessageEvent) => {
      seen.push(event.data)
      if (seen.length === count) resolve(seen)
    }
    sender.postMessage({ type: 'ask' })
  })
}

// Regression, issue 18 item 7: a forged message with a far-future stamp made every tab
// ignore every later legitimate write.
describe('stamps from other contexts are bounded to the present plus a minute', () => {
  it.each([
    ['a huge time and the largest writer', { time: 1e300, writer: '\uffff' }],
    ['2^53 (where time + 1 is time)', { time: 2 ** 53, writer: '\uffff' }],
    ['a year ahead', { time: Date.now() + 365 * 24 * 3600_000, writer: 'forger' }],
  ])(
    'a forged set with %s is ignored, and later writes still reach every tab',
    async (_, stamp) => {
      const name = channelName()
      const a = store({ channel: name, initial: set(1) })
      const b = store({ channel: name })
      await expect(b.ready()).resolves.toEqual(set(1))
      const forger = raw(name)
      forger.postMessage({ type: 'set', stamp, tokens: set(666) })
      // Messages from one sender arrive in order: the answers come after the forged set was read.
      const replies = await answers(forger, 2)
      expect(replies.map((reply) => reply.tokens)).toEqual([set(1), set(1)])
      expect(replies.every((reply) => reply.stamp.time <= Date.now())).toBe(true)
      const seen = nextChange(b)
      await a.set(set(2))
      await expect(seen).resolves.toEqual(set(2))
      expect(b.get()).toEqual(set(2))
    },
  )

  it('a stamp a few seconds ahead (writes within one ms) is still accepted', async () => {
    const name = channelName()
    const b = store({ channel: name })
    const seen = nextChange(b)
    raw(name).postMessage({
      type: 'set',
      stamp: { time: Date.now() + 5_000, writer: 'w' },
      tokens: set(4),
    })
    await expect(seen).resolves.toEqual(set(4))
  })

  it('after the clock is set back, the tabs still take each other’s writes (bounded from the newest change)', async () => {
    const name = channelName()
    const a = store({ channel: name, initial: set(1) })
    const b = store({ channel: name })
    await expect(b.ready()).resolves.toEqual(set(1))
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() - 10 * 60_000 })
    const seen = nextChange(b)
    await a.set(set(2))
    await expect(seen).resolves.toEqual(set(2))
  })

  it('a forged far-future mark does not make the lock holder wait', async () => {
    const locks = createFakeLocks()
    const name = channelName()
    const b = store({ channel: name, locks, catchUpTimeout: 60_000 })
    await b.set(set(1))
    const marks = createStampMarks(locks, `reauth-store:${name}`)
    opened.push(marks)
    await marks.publish({ time: 2 ** 53 - 1, writer: 'forger' })
    await expect(b.catchUp()).resolves.toBeUndefined()
  })

  it('persist: a far-future stamp in storage counts as written now, so this tab’s writes still win', async () => {
    const backing = new Map<string, string>()
    const persist = {
      getItem: (k: string) => backing.get(k) ?? null,
      setItem: (k: string, v: string) => void backing.set(k, v),
      removeItem: (k: string) => void backing.delete(k),
    } as Storage
    backing.set(
      'reauth.tokens',
      JSON.stringify({ tokens: set(1), stamp: { time: 1e300, writer: '\uffff' } }),
    )
    const name = channelName()
    const a = store({ channel: name, persist })
    expect(a.get()).toEqual(set(1))
    const b = store({ channel: name })
    await expect(b.ready()).resolves.toEqual(set(1))
    const seen = nextChange(b)
    await a.set(set(2))
    await expect(seen).resolves.toEqual(set(2))
  })
})

// Issue 12 §3: every tab learns that the session ended.
describe('the end of a session is shared like a set', () => {
  it('reaches the other tabs (get, subscribe, ready) and new tabs; setTokens replaces it', async () => {
    const name = channelName()
    const a = store({ channel: name, initial: set(1) })
    const b = store({ channel: name })
    await expect(b.ready()).resolves.toEqual(set(1))
    const seen = nextChange(b)
    await a.set(end)
    await expect(seen).resolves.toEqual(end)
    expect(b.get()).toEqual(end)
    // no tokens: ready() says so at once, in this tab and in a new one (no wait for the timeout)
    await expect(b.ready({ timeout: 60_000 })).resolves.toBeUndefined()
    const late = store({ channel: name })
    await expect(late.ready({ timeout: 60_000 })).resolves.toBeUndefined()
    expect(late.get()).toEqual(end)
    const back = nextChange(b)
    await a.set(set(2))
    await expect(back).resolves.toEqual(set(2))
  })

  it('an end with extra or bad fields is copied field by field, or refused', async () => {
    const a = store({ channel: channelName() })
    await a.set({ ended: { ...end.ended, token: 'secret-rt-1' } } as unknown as StoredSession)
    expect(a.get()).toEqual(end)
    await expect(a.set({ ended: { at: Number.NaN } })).rejects.toBeInstanceOf(ReauthOptionsError)
  })

  it('two engines in two tabs: B fires sessionExpired once and fails fast until setTokens', async () => {
    const locks = createFakeLocks()
    const name = channelName()
    const refresh = vi.fn(async () => {
      throw new OAuthError({ error: 'invalid_grant', status: 400 })
    })
    const storeA = store({ channel: name, locks, initial: set(1) })
    const storeB = store({ channel: name, locks })
    await storeB.ready()
    const a = createEngine({
      refresh,
      store: storeA,
      lock: createWebLock({ locks, store: storeA }),
    })
    const b = createEngine({
      refresh,
      store: storeB,
      lock: createWebLock({ locks, store: storeB }),
    })
    const expired = vi.fn()
    const told = new Promise<void>((resolve) => {
      b.on('sessionExpired', (event) => {
        expired(event)
        resolve()
      })
    })
    await expect(a.refresh()).rejects.toBeInstanceOf(SessionExpiredError)
    await told
    await expect(b.getToken()).rejects.toBeInstanceOf(SessionExpiredError)
    await expect(b.refresh()).rejects.toBeInstanceOf(SessionExpiredError)
    await expect(steps(b).recover('Bearer secret-at-1')).rejects.toBeInstanceOf(SessionExpiredError)
    expect(expired).toHaveBeenCalledTimes(1)
    expect(refresh).toHaveBeenCalledTimes(1)
    const reachesA = nextChange(storeA)
    await b.setTokens(set(5))
    await reachesA
    await expect(a.getToken()).resolves.toEqual(set(5))
    a.dispose()
    b.dispose()
  })
})
