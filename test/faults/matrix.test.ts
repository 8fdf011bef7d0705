/**
 * The fault matrix: every token-endpoint fault of @reauth/msw, for every adapter entry in
 * `harnesses`, through the contract suite's refresh function. Each gives a retryable
 * RefreshError with the documented fields and a message that says what was wrong and holds no
 * token; nothing hangs; the session survives and the next good response recovers.
 */
import {
  createEngine,
  type Engine,
  isRefreshError,
  type RefreshError,
  type RefreshFunction,
  type TokenSet,
} from '@reauth/core'
import { createAuthServer } from '@reauth/msw'
import { createRefreshGrant } from '@reauth/oauth'
import { setupServer } from 'msw/node'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import { fetchHarness, type Harness, harnesses, type TestClient } from '../support/harness.js'
import { LeakCollector } from '../support/leaks.js'
import { createTestRefresh } from '../support/refresh.js'
import { type Fault, faults } from './support.js'

const API = 'https://api.reauth.test'
const auth = createAuthServer({ accessTokenTtl: 60 })
const server = setupServer(...auth.handlers, auth.protect('GET', `${API}/me`))

beforeAll(() => server.listen({ onUnhandledRequest: 'error' }))
afterAll(() => server.close())

interface Setup {
  engine: Engine
  client: TestClient
  leaks: LeakCollector
  initial: TokenSet
  send(): Promise<{ status: number }>
}

function setup(harness: Harness, refresh: RefreshFunction, refreshTimeout?: number): Setup {
  const leaks = new LeakCollector()
  const initial = auth.signIn()
  leaks.tokens(initial)
  const engine = createEngine({
    tokens: initial,
    refresh: async (context) => {
      const tokens = await refresh(context)
      leaks.tokens(tokens)
      return tokens
    },
    logger: leaks.logger,
    ...(refreshTimeout === undefined ? {} : { refreshTimeout }),
  })
  leaks.watch(engine)
  const client = harness.create(engine, API)
  return {
    engine,
    client,
    leaks,
    initial,
    async send() {
      try {
        return await client.request(`${API}/me`)
      } catch (error) {
        leaks.error(error)
        throw error
      }
    },
  }
}

function expectRefreshError(error: unknown, fault: Fault, leaks: LeakCollector): RefreshError {
  expect(isRefreshError(error), String(error)).toBe(true)
  const failure = error as RefreshError
  expect(failure.retryable).toBe(true)
  expect(failure).toMatchObject(fault.fields)
  expect(failure.message).toMatch(fault.message)
  for (const secret of leaks.secrets) {
    expect(failure.message).not.toContain(secret)
    expect(JSON.stringify(failure)).not.toContain(secret)
  }
  return failure
}

/** Runs one fault, then a good refresh; asserts the typed error, the kept session and recovery. */
async function runFault(s: Setup, fault: Fault): Promise<void> {
  auth.enqueue(fault.outcome)
  auth.expireAccessTokens()
  const error = await s.send().catch((e: unknown) => e)
  expectRefreshError(error, fault, s.leaks)
  expect(s.engine.stats()).toMatchObject({ grants: 1, failures: 1, sessionsExpired: 0 })
  const kept = (await s.engine.getToken())?.refreshToken
  if (fault.rotated) {
    // The server spent the old refresh token: the store holds the one it issued.
    expect(kept).not.toBe(s.initial.refreshToken)
  } else expect(kept).toBe(s.initial.refreshToken)
  if (fault.fields.retryAfter !== undefined) {
    // no grant before Retry-After has passed
    const before = auth.counters.tokenRequests
    await expect(s.send()).rejects.toSatisfy(isRefreshError)
    expect(auth.counters.tokenRequests).toBe(before)
    vi.setSystemTime(Date.now() + fault.fields.retryAfter)
  }
  expect((await s.send()).status).toBe(200)
  expect(auth.counters.grants).toBe(fault.rotated ? 2 : 1)
  expect(s.engine.stats().grants).toBe(2)
  // A healthy client never presents a spent refresh token.
  expect(auth.counters.reuseDetected).toBe(0)
  expect(s.leaks.leaks()).toEqual([])
}

/** A token response slower than `refreshTimeout`: the engine gives up, the next one works. */
async function runSlow(s: Setup, timeout: number): Promise<void> {
  const gate = auth.hold()
  auth.expireAccessTokens()
  const error = await s.send().catch((e: unknown) => e)
  expectRefreshError(
    error,
    { name: 'slow', outcome: { type: 'network-error' }, fields: {}, message: /timed out/ },
    s.leaks,
  )
  expect((error as Error).message).toContain(`${timeout} ms`)
  await gate.reached
  // The aborted request is still parked at the server: let it end in a fault, so it does not
  // rotate the refresh token behind the client's back (see docs/security.md, rotation).
  auth.enqueue({ type: 'network-error' })
  gate.release()
  await vi.waitFor(() => expect(auth.counters.failures).toBe(1), { timeout: 2_000 })
  expect((await s.send()).status).toBe(200)
  expect(auth.counters.grants).toBe(1)
  expect(s.leaks.leaks()).toEqual([])
}

describe.each(harnesses)('fault matrix: $name', (harness) => {
  beforeEach(() => {
    auth.reset()
    vi.useFakeTimers({ toFake: ['Date'] })
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  it.each(faults)('$name → RefreshError, tokens kept, then recovery', async (fault) => {
    await runFault(setup(harness, createTestRefresh(auth.tokenEndpoint)), fault)
  })

  it('a token response slower than refreshTimeout → RefreshError (timed out), then recovery', async () => {
    vi.useRealTimers()
    await runSlow(setup(harness, createTestRefresh(auth.tokenEndpoint), 150), 150)
  })
})

describe('fault matrix: fetch through @reauth/oauth createRefreshGrant (oauth4webapi)', () => {
  const grant = () => createRefreshGrant({ issuer: auth.issuer, clientId: 'reauth-test' })
  beforeEach(() => {
    auth.reset()
    vi.useFakeTimers({ toFake: ['Date'] })
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  it.each(faults)('$name → RefreshError, tokens kept, then recovery', async (fault) => {
    await runFault(setup(fetchHarness, grant()), fault)
  })

  it('a token response slower than refreshTimeout → RefreshError (timed out), then recovery', async () => {
    vi.useRealTimers()
    const s = setup(fetchHarness, grant(), 300)
    // discovery first, so the timeout covers the token request alone
    expect((await s.send()).status).toBe(200)
    auth.counters.grants = 0
    await runSlow(s, 300)
  })
})
