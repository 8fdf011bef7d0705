/**
 * A deterministic driver for model-based tests of the engine: every HTTP exchange and every
 * grant is a deferred the test settles in the order fast-check picked, and the clock is fake.
 * After each action the driver lets the engine run to quiescence (no pending microtasks or
 * immediates) and then checks the invariants against its own small reference model.
 */
import {
  type AuthResponse,
  createEngine,
  type Engine,
  isSessionEnd,
  OAuthError,
  type RefreshContext,
  type TokenSet,
  type TokenStore,
} from '@reauth/core'
import { type Connection, connect, run } from '@reauth/core/adapter'
import fc from 'fast-check'
import { vi } from 'vitest'

/** The engine's expiry margin (requests wait) and refresh-ahead window (a background grant). */
export const MARGIN = 10_000
export const AHEAD = 20_000
export const REFRESH_TIMEOUT = 5_000
export const TTL = 60_000

/** What fast-check generates: one step of an interleaving. Indexes pick among what is pending. */
export type Action =
  | { type: 'start'; abortable: boolean }
  | { type: 'respond'; pick: number; status: 200 | 401 }
  | { type: 'grant'; pick: number; outcome: GrantOutcome }
  | { type: 'timeout' }
  | { type: 'abort'; pick: number }
  | { type: 'clock'; ms: number }
  | { type: 'setTokens' }
  | { type: 'clear' }

export type GrantOutcome = 'rotate' | 'keep' | 'invalid_grant' | 'invalid_client' | '503' | '429'

interface Send {
  request: number
  authorization: string | undefined
  settle: (status: number) => void
  done: boolean
}

interface Grant {
  basis: TokenSet
  signal: AbortSignal
  generation: number
  resolve: (tokens: TokenSet) => void
  reject: (error: unknown) => void
  done: boolean
}

interface Req {
  id: number
  controller: AbortController | undefined
  sends: number
  settled: number
  outcome: 'pending' | 'ok' | 'error'
  abortedAt: number | undefined
}

const refreshIndex = (refreshToken: string | undefined) => Number(refreshToken?.slice(1) ?? -1)

export class Model {
  readonly engine: Engine
  private reauth: Connection | undefined
  readonly violations: string[] = []
  readonly requests: Req[] = []
  readonly sends: Send[] = []
  readonly grants: Grant[] = []
  /** Access tokens that got a 401 while they were the store's current token. */
  readonly rejectedWhileCurrent = new Set<string>()
  readonly log: string[] = []
  private issued = 0
  private current: TokenSet | undefined
  private generation = 0
  /** The session ended by a terminal failure of a grant of the current generation, or a sign-out. */
  private ended = false
  private highestRefresh = -1
  private step = 0

  constructor(options: { replayConcurrency?: number } = {}) {
    this.current = this.mint()
    this.highestRefresh = refreshIndex(this.current.refreshToken)
    const model = this
    const store: TokenStore = {
      get: () => model.current,
      set(tokens) {
        // The end of a session leaves no tokens, as a sign-out does.
        if (isSessionEnd(tokens)) {
          model.current = undefined
          return
        }
        const index = refreshIndex(tokens.refreshToken)
        if (index < model.highestRefresh) {
          model.violation(
            `store went back from refresh token r${model.highestRefresh} to ${tokens.refreshToken}`,
          )
        }
        model.highestRefresh = Math.max(model.highestRefresh, index)
        model.current = tokens
      },
      clear() {
        model.current = undefined
      },
    }
    this.engine = createEngine({
      store,
      refresh: (context) => this.onGrant(context),
      origins: ['https://api.model.test'],
      expiryMargin: MARGIN,
      refreshAhead: AHEAD,
      refreshTimeout: REFRESH_TIMEOUT,
      replay: { concurrency: options.replayConcurrency ?? 16 },
    })
  }

  private mint(rotate = true): TokenSet {
    const n = ++this.issued
    const now = Date.now()
    return {
      accessToken: `a${n}`,
      tokenType: 'Bearer',
      ...(rotate ? { refreshToken: `r${n}` } : {}),
      expiresAt: now + TTL,
      issuedAt: now,
    }
  }

  private violation(text: string): void {
    this.violations.push(`step ${this.step}: ${text}`)
  }

  /** Inside the refresh-ahead window (which contains the margin): a grant may start without a 401. */
  private expiresSoon(tokens: TokenSet): boolean {
    if (tokens.expiresAt === undefined) return false
    let window = AHEAD
    if (tokens.issuedAt !== undefined) {
      window = Math.min(window, Math.max(0, (tokens.expiresAt - tokens.issuedAt) / 2))
    }
    return tokens.expiresAt - Date.now() <= window
  }

  private onGrant(context: RefreshContext): Promise<TokenSet> {
    const inFlight = this.grants.filter((g) => !g.done && !g.signal.aborted)
    if (inFlight.length > 0) this.violation(`a second grant started while one is in flight`)
    const basis = context.tokens
    if (!this.rejectedWhileCurrent.has(basis.accessToken) && !this.expiresSoon(basis)) {
      this.violation(
        `grant for ${basis.accessToken}, which got no 401 while current and is not expiring`,
      )
    }
    this.log.push(`grant#${this.grants.length} basis=${basis.accessToken}`)
    return new Promise<TokenSet>((resolve, reject) => {
      this.grants.push({
        basis,
        signal: context.signal,
        generation: this.generation,
        resolve,
        reject,
        done: false,
      })
    })
  }

  private send(request: Req, authorization: string | undefined): Promise<number> {
    request.sends++
    if (request.sends > 2) this.violation(`request ${request.id} sent ${request.sends} times`)
    if (request.settled > 0) this.violation(`request ${request.id} sent after it settled`)
    if (this.ended && authorization !== undefined) {
      this.violation(`request ${request.id} carried ${authorization} after the session ended`)
    }
    const signal = request.controller?.signal
    if (signal?.aborted) return Promise.reject(signal.reason)
    return new Promise<number>((resolve, reject) => {
      const entry: Send = {
        request: request.id,
        authorization,
        done: false,
        settle: (status) => {
          entry.done = true
          resolve(status)
        },
      }
      // fetch rejects at once with the signal's reason when the caller aborts.
      signal?.addEventListener(
        'abort',
        () => {
          if (entry.done) return
          entry.done = true
          reject(signal.reason)
        },
        { once: true },
      )
      this.sends.push(entry)
    })
  }

  start(abortable: boolean): void {
    const request: Req = {
      id: this.requests.length,
      controller: abortable ? new AbortController() : undefined,
      sends: 0,
      settled: 0,
      outcome: 'pending',
      abortedAt: undefined,
    }
    this.requests.push(request)
    const response = (status: number): AuthResponse => ({
      status,
      headers: { get: () => null },
    })
    this.reauth ??= connect(this.engine, { baseHint: 'the engine origins' })
    // The adapter interface's whole path (attach, send, the response-side step): what every
    // adapter runs.
    run<number>(this.reauth, {
      url: 'https://api.model.test/x',
      method: 'GET',
      signal: request.controller?.signal,
      send: (sent) => this.send(request, sent?.headers.authorization),
      response,
    }).then(
      () => {
        request.settled++
        request.outcome = 'ok'
      },
      () => {
        request.settled++
        request.outcome = 'error'
      },
    )
  }

  async apply(action: Action): Promise<void> {
    this.step++
    this.log.push(JSON.stringify(action))
    switch (action.type) {
      case 'start':
        this.start(action.abortable)
        break
      case 'respond': {
        const pending = this.sends.filter((s) => !s.done)
        const send = pending[action.pick % Math.max(1, pending.length)]
        if (!send) break
        if (
          action.status === 401 &&
          send.authorization !== undefined &&
          this.current &&
          send.authorization === `Bearer ${this.current.accessToken}`
        ) {
          this.rejectedWhileCurrent.add(this.current.accessToken)
        }
        send.settle(action.status)
        break
      }
      case 'grant': {
        const pending = this.grants.filter((g) => !g.done)
        const grant = pending[action.pick % Math.max(1, pending.length)]
        if (!grant) break
        this.settleGrant(grant, action.outcome)
        break
      }
      case 'timeout':
        vi.advanceTimersByTime(REFRESH_TIMEOUT)
        break
      case 'abort': {
        const open = this.requests.filter((r) => r.controller && r.settled === 0)
        const request = open[action.pick % Math.max(1, open.length)]
        if (!request?.controller) break
        request.abortedAt = this.step
        request.controller.abort()
        break
      }
      case 'clock':
        vi.setSystemTime(Date.now() + action.ms)
        break
      case 'setTokens':
        this.generation++
        this.ended = false
        await this.engine.setTokens(this.mint())
        break
      case 'clear':
        this.generation++
        this.ended = true
        await this.engine.clear()
        break
    }
    await quiesce()
    this.check()
  }

  private settleGrant(grant: Grant, outcome: GrantOutcome): void {
    grant.done = true
    const live = !grant.signal.aborted && grant.generation === this.generation
    switch (outcome) {
      case 'rotate':
      case 'keep':
        grant.resolve(this.mint(outcome === 'rotate'))
        break
      case 'invalid_grant':
      case 'invalid_client':
        // The engine sees it only if the grant has not timed out; then it ends the session.
        if (live) this.ended = true
        grant.reject(
          new OAuthError({ error: outcome, status: outcome === 'invalid_grant' ? 400 : 401 }),
        )
        break
      case '503':
        grant.reject(Object.assign(new Error('HTTP 503'), { status: 503 }))
        break
      case '429':
        grant.reject(Object.assign(new Error('HTTP 429'), { status: 429, retryAfter: '1' }))
        break
    }
  }

  /** Invariants that hold after every step. */
  private check(): void {
    for (const request of this.requests) {
      if (request.settled > 1) this.violation(`request ${request.id} settled twice`)
      if (request.abortedAt !== undefined && request.settled === 0) {
        this.violation(`request ${request.id} was aborted but has not settled`)
      }
    }
    if (this.ended && this.current !== undefined) {
      this.violation('the session ended but the store still holds tokens')
    }
    if (!this.ended && this.current === undefined) {
      this.violation('the store was cleared without a terminal failure of a current grant')
    }
  }

  /** Answer everything still pending (200s, successful grants) until nothing is left. */
  async drain(): Promise<void> {
    for (let round = 0; round < 200; round++) {
      const send = this.sends.find((s) => !s.done)
      if (send) {
        send.settle(200)
        await quiesce()
        continue
      }
      const grant = this.grants.find((g) => !g.done && !g.signal.aborted)
      if (grant) {
        this.settleGrant(grant, 'rotate')
        await quiesce()
        continue
      }
      break
    }
    this.check()
    for (const request of this.requests) {
      if (request.settled !== 1) {
        this.violation(`request ${request.id} settled ${request.settled} times after the drain`)
      }
    }
  }
}

/** Let every pending microtask and immediate run (real setImmediate; only timeouts are fake). */
export async function quiesce(): Promise<void> {
  for (let i = 0; i < 4; i++) await new Promise<void>((resolve) => setImmediate(resolve))
}

/** One step of an interleaving, weighted so that runs reach refreshes, failures and races. */
export const actionArbitrary: fc.Arbitrary<Action> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({ type: fc.constant('start' as const), abortable: fc.boolean() }),
  },
  {
    weight: 6,
    arbitrary: fc.record({
      type: fc.constant('respond' as const),
      pick: fc.nat(20),
      status: fc.constantFrom(200 as const, 401 as const),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      type: fc.constant('grant' as const),
      pick: fc.nat(3),
      outcome: fc.constantFrom<GrantOutcome>(
        'rotate',
        'rotate',
        'keep',
        'invalid_grant',
        'invalid_client',
        '503',
        '429',
      ),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ type: 'timeout' as const }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('abort' as const), pick: fc.nat(20) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      type: fc.constant('clock' as const),
      ms: fc.constantFrom(1_000, 25_000, 52_000, 70_000),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ type: 'setTokens' as const }) },
  { weight: 1, arbitrary: fc.constant({ type: 'clear' as const }) },
)

/** Play a whole interleaving, then drain. */
export async function play(actions: Action[], replayConcurrency?: number): Promise<Model> {
  const model = new Model(replayConcurrency === undefined ? {} : { replayConcurrency })
  for (const step of actions) await model.apply(step)
  await model.drain()
  return model
}
