/**
 * The runtime matrix's scenarios: a representative subset of the contract suite, written
 * against nothing but web APIs so the same bundle runs on Node, Bun, Deno and workerd. Each
 * scenario returns what it observed; test/runtimes/runtimes.test.ts asserts on it.
 */
import {
  createEngine,
  type Engine,
  isSessionExpiredError,
  parseTokenResponse,
  type TokenSet,
} from '@reauth/core'
import type { Harness } from '../support/harness.js'
import type { LoopbackStats } from '../support/loopback-server.js'
import { createTestRefresh } from '../support/refresh.js'

/** What one scenario saw, per adapter. */
export interface ScenarioResult {
  /** Statuses of the requests that resolved, in order. */
  statuses: number[]
  /** What the requests that rejected rejected with. */
  errors: Array<{ name: string; abort: boolean; sessionExpired: boolean }>
  engine: ReturnType<Engine['stats']>
  server: LoopbackStats
  /** Events the engine emitted, by name. */
  events: Record<string, number>
}

export type RuntimeResults = Record<string, Record<string, ScenarioResult | { failed: string }>>

interface Context {
  base: string
  sid: string
  harness: Harness
}

async function signIn(ctx: Context, query: string): Promise<TokenSet> {
  const response = await fetch(`${ctx.base}/s/${ctx.sid}/signin?${query}`, { method: 'POST' })
  return parseTokenResponse(await response.json(), { sentAt: Date.now() })
}

async function call(ctx: Context, route: string, method = 'GET'): Promise<unknown> {
  const response = await fetch(`${ctx.base}/s/${ctx.sid}/${route}`, { method })
  return response.json()
}

async function setup(ctx: Context, query: string) {
  const tokens = await signIn(ctx, query)
  const events: Record<string, number> = {}
  const engine = createEngine({
    tokens,
    refresh: createTestRefresh(`${ctx.base}/s/${ctx.sid}/token`),
  })
  for (const name of ['refresh', 'refreshError', 'sessionExpired'] as const) {
    engine.on(name, () => {
      events[name] = (events[name] ?? 0) + 1
    })
  }
  const client = ctx.harness.create(engine, ctx.base)
  const statuses: number[] = []
  const errors: ScenarioResult['errors'] = []
  const send = (path: string, options: Parameters<typeof client.request>[1] = {}) =>
    client.request(`${ctx.base}/s/${ctx.sid}/api/${path}`, options).then(
      (result) => {
        statuses.push(result.status)
      },
      (error: unknown) => {
        errors.push({
          name: String((error as Error)?.name),
          abort: ctx.harness.isAbortError(error),
          sessionExpired: isSessionExpiredError(error),
        })
      },
    )
  const finish = async (): Promise<ScenarioResult> => ({
    statuses,
    errors,
    engine: engine.stats(),
    server: (await call(ctx, 'stats')) as LoopbackStats,
    events,
  })
  return { engine, send, finish }
}

/** The storm: 50 concurrent requests with a rejected token → one grant, every request replayed. */
export const STORM = 50

const scenarios: Record<string, (ctx: Context) => Promise<ScenarioResult>> = {
  async storm(ctx) {
    // The grant is answered only once the API has refused all 50: they all saw a 401.
    const s = await setup(ctx, `expired=1&hold=token&releaseAfter=${STORM}`)
    await Promise.all(Array.from({ length: STORM }, () => s.send('me')))
    return s.finish()
  },

  async late(ctx) {
    // Sent with the first token and held by the server; meanwhile the tokens are refreshed.
    const s = await setup(ctx, 'hold=api')
    const late = s.send('me')
    await call(ctx, 'held')
    await s.engine.refresh()
    await call(ctx, 'release', 'POST')
    await late
    return s.finish()
  },

  async terminal(ctx) {
    const s = await setup(ctx, 'expired=1&terminal=1&hold=token&releaseAfter=5')
    await Promise.all(Array.from({ length: 5 }, () => s.send('me')))
    // The session has ended: this one fails fast, without a request to the API or the token endpoint.
    await s.send('me')
    return s.finish()
  },

  async abort(ctx) {
    const s = await setup(ctx, 'expired=1&hold=token')
    const controller = new AbortController()
    const aborted = s.send('me', { signal: controller.signal })
    const others = Array.from({ length: 4 }, () => s.send('me'))
    await call(ctx, 'held')
    controller.abort()
    // The aborted request settles while the grant is still held.
    await aborted
    await call(ctx, 'release', 'POST')
    await Promise.all(others)
    return s.finish()
  },

  // A POST whose first send gets a 401: the replay carries the same bytes (server.echoes).
  async 'body-json'(ctx) {
    const s = await setup(ctx, 'expired=1')
    await s.send('echo', { body: { kind: 'json', value: { a: 1, text: 'ünïcode ✓' } } })
    return s.finish()
  },

  async 'body-form'(ctx) {
    const s = await setup(ctx, 'expired=1')
    const value = new URLSearchParams({ a: '1', b: 'two words' })
    await s.send('echo', { body: { kind: 'urlencoded', value } })
    return s.finish()
  },
}

/** Runs every scenario through every harness; a scenario that throws is reported, not hidden. */
export async function runScenarios(
  base: string,
  runtime: string,
  harnesses: Harness[],
): Promise<RuntimeResults> {
  const results: RuntimeResults = {}
  for (const harness of harnesses) {
    const byScenario: RuntimeResults[string] = {}
    results[harness.name] = byScenario
    for (const [name, scenario] of Object.entries(scenarios)) {
      const sid = `${runtime}-${harness.name}-${name}`.replace(/[^\w-]+/g, '_')
      try {
        byScenario[name] = await scenario({ base, sid, harness })
      } catch (error) {
        byScenario[name] = { failed: `${(error as Error)?.name}: ${(error as Error)?.message}` }
      }
    }
  }
  return results
}

/** The line a runtime prints, which the test parses. */
export const RESULT_PREFIX = 'REAUTH-RUNTIME-RESULTS '
