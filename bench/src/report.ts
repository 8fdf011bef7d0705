import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { cpus, loadavg, totalmem } from 'node:os'
import { dirname, join } from 'node:path'
import type { Size } from '../size.js'
import type { Plan } from './main.js'
import type { LateRun, MemoryRun, OverheadRun, ProactiveRun, StormRun } from './scenarios.js'
import { TOKEN_DELAY_MS } from './scenarios.js'
import { median } from './stats.js'

/** The engine's default replay concurrency (packages/core/src/replay-queue.ts). */
const QUEUE = 64

export interface Machine {
  cpu: string
  cores: number
  memoryGiB: number
  node: string
  platform: string
  loadAtStart: number[]
  versions: Record<string, string>
}

export interface Results {
  smoke: boolean
  plan: Plan
  machine: Machine
  overhead: OverheadRun[]
  storm: StormRun[]
  late: LateRun[]
  proactive: ProactiveRun[]
  memory: MemoryRun[]
  sizes: Size[]
  budgets: Readonly<Record<string, number>>
  tokenRoundTrip: number[]
  seconds: number
}

const require = createRequire(new URL('../package.json', import.meta.url))

function version(name: string): string {
  try {
    const path = require.resolve(`${name}/package.json`)
    return (JSON.parse(readFileSync(path, 'utf8')) as { version: string }).version
  } catch {
    // `exports` hides package.json (ky, axios-auth-refresh): walk up from the resolved entry.
    try {
      let dir = dirname(require.resolve(name))
      for (let i = 0; i < 5; i++, dir = dirname(dir)) {
        const file = join(dir, 'package.json')
        if (!existsSync(file)) continue
        const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version: string }
        if (pkg.name === name) return pkg.version
      }
    } catch {}
    return 'unknown'
  }
}

export function machine(): Machine {
  const names = [
    '@reauth/core',
    '@reauth/axios',
    '@reauth/ky',
    '@reauth/fetch',
    'axios',
    'ky',
    'axios-auth-refresh',
    'axios-jwt',
    'esbuild',
  ]
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    loadAtStart: loadavg().map((n) => Math.round(n * 100) / 100),
    versions: Object.fromEntries(names.map((name) => [name, version(name)])),
  }
}

const ms = (n: number) => `${n.toFixed(0)} ms`
const int = (n: number) => (Number.isInteger(n) ? String(n) : n.toFixed(1))

function by<T extends { variant: string }>(runs: T[]): Map<string, T[]> {
  const groups = new Map<string, T[]>()
  for (const run of runs) groups.set(run.variant, [...(groups.get(run.variant) ?? []), run])
  return groups
}

function table(head: string[], rows: string[][]): string {
  return [
    `| ${head.join(' | ')} |`,
    `|${head.map(() => '---').join('|')}|`,
    ...rows.map((row) => `| ${row.join(' | ')} |`),
  ].join('\n')
}

const BARE: Record<string, string> = {
  '@reauth/axios': 'axios (bare, token by hand)',
  'axios-auth-refresh (defaults)': 'axios (bare, token by hand)',
  '@reauth/ky': 'ky (bare, token by hand)',
  '@reauth/fetch': 'fetch (bare, token by hand)',
}

interface OverheadRow {
  variant: string
  mode: OverheadRun['mode']
  reqPerSec: number
  ratio: number | undefined
  failures: number
}

function overheadRows(results: Results): OverheadRow[] {
  const rows: OverheadRow[] = []
  for (const mode of ['sequential', 'concurrent'] as const) {
    const groups = by(results.overhead.filter((r) => r.mode === mode))
    const time = (variant: string) => median((groups.get(variant) ?? []).map((r) => r.ms))
    for (const [variant, runs] of groups) {
      const bare = BARE[variant]
      rows.push({
        variant,
        mode,
        reqPerSec: (results.plan.overheadCount / time(variant)) * 1000,
        ratio: bare ? time(variant) / time(bare) : undefined,
        failures: runs.reduce((sum, r) => sum + r.failures, 0),
      })
    }
  }
  return rows
}

function verdict(ok: boolean, good = 'meets target', bad = 'misses target'): string {
  return ok ? good : `**${bad}**`
}

export function renderResults(results: Results): string {
  const { plan, machine: m } = results
  const repeats = `median of ${plan.repeats} repeat${plan.repeats === 1 ? '' : 's'}`
  const out: string[] = []
  out.push(
    `# reauth benchmark results${results.smoke ? ' (smoke run: small counts, not figures to quote)' : ''}`,
  )
  out.push('')
  out.push(
    `Written by \`pnpm bench\` (bench/src/main.ts); what each figure means is in [README.md](README.md). ` +
      `Every figure is the **${repeats}** of the whole scenario, run in one process against a loopback ` +
      `node:http server (127.0.0.1, keep-alive, in a forked child process) that rotates refresh tokens ` +
      `and counts reuse of a retired one. The token endpoint takes ${TOKEN_DELAY_MS} ms per grant ` +
      `(one token round trip, measured from the client: ${ms(median(results.tokenRoundTrip))}).`,
  )
  out.push('')
  out.push(
    `- Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.platform}; Node ${m.node}. ` +
      `Load average (1/5/15 min) at start ${m.loadAtStart.join(' / ')}. The loopback server runs in a ` +
      `child process on the same ${m.cores} cores as the clients, so throughput figures carry noise ` +
      `of several percent between runs.`,
  )
  out.push(
    `- Versions: ${Object.entries(m.versions)
      .map(([name, v]) => `${name} ${v}`)
      .join(', ')}.`,
  )
  out.push(`- Total bench time: ${results.seconds.toFixed(0)} s.`)
  out.push('')

  // 1. overhead
  out.push(`## 1. Overhead with a valid token (${plan.overheadCount} requests)`)
  out.push('')
  out.push(
    `Same client with the token attached by hand = 1.00. Sequential: one request at a time; ` +
      `concurrent: ${plan.concurrency} in flight. Target ≤ 1.05.`,
  )
  out.push('')
  const rows = overheadRows(results)
  const names = [...new Set(rows.map((r) => r.variant))]
  out.push(
    table(
      [
        'client',
        'sequential req/s',
        'ratio to bare',
        `concurrency ${plan.concurrency} req/s`,
        'ratio to bare',
        'failures',
      ],
      names.map((variant) => {
        const seq = rows.find((r) => r.variant === variant && r.mode === 'sequential')
        const con = rows.find((r) => r.variant === variant && r.mode === 'concurrent')
        const ratio = (row: OverheadRow | undefined) =>
          row?.ratio === undefined
            ? '1.00 (baseline)'
            : row.ratio <= 1.05
              ? row.ratio.toFixed(2)
              : `**${row.ratio.toFixed(2)}**`
        return [
          variant,
          int(Math.round(seq?.reqPerSec ?? 0)),
          ratio(seq),
          int(Math.round(con?.reqPerSec ?? 0)),
          ratio(con),
          String((seq?.failures ?? 0) + (con?.failures ?? 0)),
        ]
      }),
    ),
  )
  out.push('')
  out.push(overheadNotes(rows))
  out.push('')

  // 2. storm
  const rtt = median(results.tokenRoundTrip)
  out.push(`## 2. Storm: ${plan.stormSize} concurrent requests meet an expired token`)
  out.push('')
  out.push(
    `Grants = refresh_token calls the server received (target 1); successes = requests that ended ` +
      `200 (target ${plan.stormSize}); reused = retired refresh tokens presented again (target 0; a real ` +
      `server would revoke the session). Added latency = storm latency minus the same burst's latency ` +
      `with a valid token, at p50 and p99; one token round trip is ${ms(rtt)}, so an ideal client adds ` +
      `about one 401 round trip + one token round trip + one replay.`,
  )
  out.push('')
  const storm = by(results.storm)
  out.push(
    table(
      [
        'client',
        'grants',
        'successes',
        'reused',
        'added p50',
        'added p99',
        'added p50 in token round trips',
        'verdict',
      ],
      [...storm].map(([variant, runs]) => {
        const grants = median(runs.map((r) => r.grants))
        const successes = median(runs.map((r) => r.successes))
        const reuse = median(runs.map((r) => r.reuse))
        const p50 = median(runs.map((r) => r.stormP50 - r.validP50))
        const p99 = median(runs.map((r) => r.stormP99 - r.validP99))
        const good = grants === 1 && successes === plan.stormSize && reuse === 0
        return [
          variant,
          int(grants),
          int(successes),
          int(reuse),
          ms(p50),
          ms(p99),
          (p50 / rtt).toFixed(1),
          verdict(good, 'meets targets', failing(grants, successes, reuse, plan.stormSize)),
        ]
      }),
    ),
  )
  out.push('')
  out.push(stormNote(results))
  out.push('')

  // 3. late
  out.push(
    `## 3. Late 401s: ${plan.lateSize} requests with the old token, 401s arriving after the refresh`,
  )
  out.push('')
  out.push(
    `The server answers the first 401 at once and holds the other ${plan.lateSize - 1} until a grant ` +
      `completed (+20 ms), so they reach the client after its refresh finished. Extra grants = grants − 1 ` +
      `(target 0).`,
  )
  out.push('')
  out.push(
    table(
      ['client', 'extra grants', 'successes', 'reused', 'verdict'],
      [...by(results.late)].map(([variant, runs]) => {
        const extra = median(runs.map((r) => r.grants - 1))
        const successes = median(runs.map((r) => r.successes))
        const reuse = median(runs.map((r) => r.reuse))
        const good = extra === 0 && successes === plan.lateSize && reuse === 0
        return [
          variant,
          int(extra),
          `${int(successes)} / ${plan.lateSize}`,
          int(reuse),
          verdict(good, 'meets targets', failing(extra + 1, successes, reuse, plan.lateSize)),
        ]
      }),
    ),
  )
  out.push('')

  // 4. proactive
  out.push(
    `## 4. Proactive: ${plan.lifetimes} token lifetimes of ${plan.ttlMs} ms, ${plan.workers} request loops`,
  )
  out.push('')
  out.push(
    `\`expires_in\` is known; requests flow continuously for ${plan.lifetimes} × ${plan.ttlMs} ms. ` +
      `401s seen = 401 responses the API sent (target 0). reauth's leeway is its default (10 s) bounded ` +
      `by half the lifetime, i.e. ${plan.ttlMs / 2} ms here, so it refreshes about every half lifetime + ` +
      `one grant. axios-jwt's default 10 s fudge is longer than the whole lifetime, so it is also run ` +
      `with the same margin as reauth.`,
  )
  out.push('')
  out.push(
    table(
      [
        'client',
        'requests',
        '401s seen',
        'grants',
        'grants per lifetime',
        'failures',
        'reused',
        'verdict',
      ],
      [...by(results.proactive)].map(([variant, runs]) => {
        const requests = median(runs.map((r) => r.requests))
        const seen = median(runs.map((r) => r.seen401))
        const grants = median(runs.map((r) => r.grants))
        const failures = median(runs.map((r) => r.requests - r.successes))
        const reuse = median(runs.map((r) => r.reuse))
        return [
          variant,
          int(requests),
          int(seen),
          int(grants),
          (grants / plan.lifetimes).toFixed(1),
          int(failures),
          int(reuse),
          verdict(seen === 0 && failures === 0 && reuse === 0, 'no 401', '401s or failures'),
        ]
      }),
    ),
  )
  out.push('')

  // 5. memory
  out.push(`## 5. Memory: ${plan.memorySize} requests waiting on one held refresh`)
  out.push('')
  out.push(
    `Heap growth (\`process.memoryUsage().heapUsed\` after two \`global.gc()\` calls, with all requests ` +
      `waiting, minus the same before they were made) divided by the number of waiting requests. It ` +
      `includes the client's own per-request state (config, promise chain) and the harness's one pending ` +
      `promise per request, the same for every row. reauth rows wait before sending (the token is known ` +
      `to be expired); the peers (no proactive refresh) wait in axios-auth-refresh's queue after one ` +
      `request's 401 started the refresh.`,
  )
  out.push('')
  out.push(
    table(
      ['client', 'waiting', 'heap bytes per waiting request', 'successes after release'],
      [...by(results.memory)].map(([variant, runs]) => [
        variant,
        int(median(runs.map((r) => r.waiting))),
        int(Math.round(median(runs.map((r) => r.bytesPerRequest)))),
        int(median(runs.map((r) => r.successes))),
      ]),
    ),
  )
  out.push('')
  out.push(memoryNotes(results))
  out.push('')

  // 6. size
  out.push('## 6. Size (min+gzip, esbuild: bundle, minify, ESM, platform browser, peers external)')
  out.push('')
  out.push(
    `Each package with its runtime dependencies bundled and only peer dependencies (axios, ky, msw) ` +
      `external; @reauth packages built from their sources (\`source\` condition). An adapter alone ` +
      `tree-shakes the engine away (it takes an engine as an argument), so "core + adapter" is what an ` +
      `app ships for one client. Budgets (bench/size.ts) are checked by test/size.test.ts in CI. One ` +
      `measurement (deterministic).`,
  )
  out.push('')
  out.push(
    table(
      ['bundle', 'minified', 'min+gzip', 'budget'],
      results.sizes.map((size) => {
        const budget = results.budgets[size.name]
        return [
          size.name,
          `${size.minified} B`,
          `${size.gzip} B`,
          budget === undefined ? '—' : `${budget} B${size.gzip > budget ? ' **over**' : ''}`,
        ]
      }),
    ),
  )
  out.push('')
  out.push(sizeNotes(results.sizes))
  out.push('')
  return `${out.join('\n')}\n`
}

function failing(grants: number, successes: number, reuse: number, size: number): string {
  const parts: string[] = []
  if (grants !== 1) parts.push(`${int(grants)} grants`)
  if (successes !== size) parts.push(`${int(size - successes)} of ${size} failed`)
  if (reuse !== 0) parts.push(`${int(reuse)} refresh tokens reused`)
  return parts.join(', ')
}

function overheadNotes(rows: OverheadRow[]): string {
  const over = rows.filter((r) => r.variant.startsWith('@reauth/') && (r.ratio ?? 0) > 1.05)
  if (over.length === 0) return 'Every reauth adapter is within the 1.05 target in both modes.'
  const lines = [
    `**Where reauth is over the 1.05 target** (${over
      .map((r) => `${r.variant} ${r.mode} ${r.ratio?.toFixed(2)}`)
      .join('; ')}). Causes, from reading the code (not from a profile):`,
  ]
  if (over.some((r) => r.variant === '@reauth/fetch')) {
    lines.push(
      '- `@reauth/fetch`, for a URL input with a body fetch can take twice, calls `fetch(input, init)` ' +
        'with the header merged in (no `Request` built; create-fetch.ts). What is left is ' +
        '`engine.run`: `new URL` for the origin check, two `Headers` copies, and awaits on the store ' +
        'and the send. Fix: cache the origin check per URL string, and skip the await for a ' +
        'synchronous store.',
    )
  }
  if (over.some((r) => r.variant === '@reauth/axios')) {
    lines.push(
      '- `@reauth/axios` runs an async request interceptor per request: `instance.getUri` to build ' +
        'the full URL, `new URL` in `authorize`, `AxiosHeaders.from` and an `Attached` marker. Fix: ' +
        'cache the origin check per `baseURL`/`url` pair and skip `getUri` for relative URLs.',
    )
  }
  if (over.some((r) => r.variant === '@reauth/ky')) {
    lines.push(
      "- `@reauth/ky` wraps the instance in a `Proxy` that copies each call's options into a " +
        'new `context` object, and its `beforeRequest` hook keeps per-call state in a `WeakMap` and ' +
        'parses the URL. Fix: skip the copy when the caller passes no `signal`; cache the origin check.',
    )
  }
  return lines.join('\n')
}

function sizeNotes(sizes: Size[]): string {
  const gzip = (name: string) => sizes.find((s) => s.name === name)?.gzip ?? 0
  const peer = gzip('axios-auth-refresh')
  const ours = gzip('@reauth/core + axios')
  if (ours <= peer) return ''
  return (
    `**Where reauth is larger:** \`@reauth/core + axios\` is ${ours} B against axios-auth-refresh's ` +
    `${peer} B. axios-auth-refresh is one interceptor with no token state, no expiry, no stale-token ` +
    `check, no typed errors and no bounded replay queue; the engine's ` +
    `size is mostly option validation, typed errors with messages, failure classification and the ` +
    `replay queue. What would shrink it: shorter error messages behind codes, and moving option ` +
    `validation to a development-only build.`
  )
}

function memoryNotes(results: Results): string {
  const perRequest = (variant: string) =>
    median(results.memory.filter((r) => r.variant === variant).map((r) => r.bytesPerRequest))
  const peer = perRequest('axios-auth-refresh (defaults)')
  const worse = [...new Set(results.memory.map((r) => r.variant))].filter(
    (variant) => variant.startsWith('@reauth/') && perRequest(variant) > peer,
  )
  if (worse.length === 0 || Number.isNaN(peer)) return ''
  const lines = [
    `**Where reauth holds more per waiting request than axios-auth-refresh** (${worse
      .map((variant) => `${variant} ${Math.round(perRequest(variant))} B`)
      .join(', ')} against ${Math.round(peer)} B). Causes, from reading the code:`,
    "- reauth waits later in the request's life: an axios request waits inside its async request " +
      'interceptor with its config and headers built, a ky request inside `beforeRequest` with its ' +
      '`Request`, options, `AbortController` and timeout already made by ky, a fetch request with its ' +
      "`Request` built. axios-auth-refresh's waiters are parked by a request interceptor on one " +
      'shared promise before most of that exists.',
    '- With a signal (ky always hands one: its own `AbortController`), each waiter also gets its ' +
      'own `abortable()` promise and abort listener in the engine. Fix: park waiters on the shared ' +
      'refresh promise before the client builds its per-request objects (for ky, in the `init` hook ' +
      'or the instance proxy, before ky constructs the `Request`), and register one abort listener ' +
      'per signal rather than one promise per waiter.',
  ]
  return lines.join('\n')
}

export function stormNote(results: Results): string {
  const rtt = median(results.tokenRoundTrip)
  const slow = [...by(results.storm)]
    .filter(([variant]) => variant.startsWith('@reauth/'))
    .map(([variant, runs]) => [variant, median(runs.map((r) => r.stormP50 - r.validP50))] as const)
    .filter(([, added]) => added > 2 * rtt)
  if (slow.length === 0) return ''
  return (
    `**Where reauth adds more latency than one token round trip** (${slow
      .map(([variant, added]) => `${variant} +${added.toFixed(0)} ms at p50`)
      .join('; ')}). The replays go through the engine's bounded FIFO queue, ` +
    `\`replay: { concurrency: ${QUEUE} }\` by default (DESIGN.md "Bounded"): 1 000 replays pass ${QUEUE} at a ` +
    `time, about ${Math.ceil(1000 / QUEUE)} waves, so the cost grows with the client's own per-request ` +
    'time. That is the price of not sending 1 000 replays at once; axios-auth-refresh with ' +
    '`deduplicateRefresh: false` replays all at once. What would fix it: a concurrency that adapts to ' +
    'how many requests were in flight before the 401s; users can set `replay.concurrency` today. ' +
    'Latencies are noisy under load (see the load average); a negative figure means the storm burst ran ' +
    'faster than the valid-token burst it is compared with.'
  )
}
