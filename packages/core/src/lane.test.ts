import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { flush, HOUR, hourToken, T0 } from '../../../test/support/hour-token.js'
import { connect, LATER } from './adapter.js'
import { generateDpopKeyPair } from './dpop.js'
import { createEngine } from './engine.js'
import { createMemoryStore } from './memory-store.js'
import type { RefreshFunction, TokenSet } from './types.js'

const API = 'https://api.example.com'
const ME = { url: `${API}/me`, method: 'GET' }

const never: RefreshFunction = () => new Promise<TokenSet>(() => {})

function connected(tokens: TokenSet, refresh: RefreshFunction = never) {
  const store = createMemoryStore(tokens)
  const engine = createEngine({ refresh, store, origins: [API] })
  return { engine, store, reauth: connect(engine, { baseHint: 'x' }) }
}

const authorization = (sent: unknown) =>
  sent === LATER || sent === undefined
    ? sent
    : (sent as { headers: Record<string, string> }).headers.authorization

beforeEach(() => {
  vi.useFakeTimers({ now: T0 })
})
afterEach(() => {
  vi.useRealTimers()
})

describe('the fast lane (ready, calm)', () => {
  it('answers a valid token synchronously, with what attach resolves with', async () => {
    const { reauth } = connected(hourToken(1, HOUR))
    const first = reauth.ready(ME)
    expect(authorization(first)).toBe('Bearer at-1')
    // The second request is answered by the lane: the same credentials object.
    expect(reauth.ready(ME)).toBe(first)
    expect(reauth.calm()).toBe(true)
    await expect(reauth.attach(ME)).resolves.toBe(first)
  })

  it('never answers with a set the store no longer holds', async () => {
    const { reauth, engine, store } = connected(hourToken(1, HOUR))
    expect(authorization(reauth.ready(ME))).toBe('Bearer at-1')
    await engine.setTokens(hourToken(2, HOUR))
    expect(authorization(reauth.ready(ME))).toBe('Bearer at-2')
    // A set changed in place (a store that mutates its value) is read again.
    const held = store.get() as TokenSet
    held.accessToken = 'at-3'
    expect(authorization(reauth.ready(ME))).toBe('Bearer at-3')
    await engine.clear()
    expect(reauth.ready(ME)).toBeUndefined()
    expect(reauth.calm()).toBe(true)
  })

  it('hands over to the request path at the refresh-ahead window: one background grant', async () => {
    const refresh = vi.fn(never)
    const { reauth } = connected(hourToken(1, 10 * 60_000), refresh)
    expect(authorization(reauth.ready(ME))).toBe('Bearer at-1')
    expect(refresh).not.toHaveBeenCalled()
    // 50 s before expiry: inside the default 60 s window, outside the 5 s margin.
    vi.setSystemTime(T0 + 10 * 60_000 - 50_000)
    expect(reauth.calm()).toBe(true)
    for (let i = 0; i < 10; i++) expect(authorization(reauth.ready(ME))).toBe('Bearer at-1')
    await flush()
    expect(refresh).toHaveBeenCalledTimes(1)
    // Inside the margin: only attach can answer (the request waits).
    vi.setSystemTime(T0 + 10 * 60_000 - 4_000)
    expect(reauth.ready(ME)).toBe(LATER)
    expect(reauth.calm()).toBe(false)
  })

  it('decides origins per URL: another origin goes untouched', () => {
    const { reauth } = connected(hourToken(1, HOUR))
    expect(authorization(reauth.ready(ME))).toBe('Bearer at-1')
    expect(reauth.ready({ url: 'https://other.example.com/me' })).toBeUndefined()
    expect(authorization(reauth.ready(ME))).toBe('Bearer at-1')
    expect(reauth.ready({ ...ME, hasAuthorization: true })).toBeUndefined()
  })

  it('leaves an aborted request to attach, which rejects with its reason', async () => {
    const { reauth } = connected(hourToken(1, HOUR))
    expect(authorization(reauth.ready(ME))).toBe('Bearer at-1')
    const controller = new AbortController()
    controller.abort(new Error('gone'))
    const request = { ...ME, signal: controller.signal }
    expect(reauth.ready(request)).toBe(LATER)
    await expect(reauth.attach(request, { signal: controller.signal })).rejects.toThrow('gone')
  })

  it('is not calm with a token per resource, and leaves DPoP proofs to attach', async () => {
    const store = createMemoryStore(hourToken(1, HOUR))
    const engine = createEngine({
      refresh: never,
      store,
      origins: [API],
      resources: { [API]: `${API}/` },
    })
    expect(connect(engine, { baseHint: 'x' }).calm()).toBe(false)
    const dpop = connected({
      ...hourToken(1, HOUR),
      tokenType: 'DPoP',
      dpopKey: await generateDpopKeyPair(),
    })
    expect(dpop.reauth.ready(ME)).toBe(LATER)
    const sent = await dpop.reauth.attach(ME)
    expect(sent?.headers.dpop).toEqual(expect.any(String))
  })
})
