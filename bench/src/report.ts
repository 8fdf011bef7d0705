import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { cpus, loadavg, totalmem } from 'node:os'
import { dirname, join } from 'node:path'
import type { Size } from '../size.js'
import type { Plan } from './main.js'
import type {
  LateRun,
  MemoryRun,
  MemoryStage,
  OverheadRun,
  ProactiveRun,
  StormRun,
} from './scenarios.js'
import { TOKEN_DELAY_MS } from './scenarios.js'
import { median, type Spread, spread } from './stats.js'

/** The engine's default replay concurrency (packages/core/src/replay-queue.ts). */
const QUEUE = 64

export interface Machine {
  cpu: string
  cores: number
  memoryGiB: number
  node: string
  platform: string
  loadAtStart: number[]
  loadAtEnd?: number[]
  versions: Record<string, string>
}

export interface Results {
  smoke: boolean
  /** The commit measured (`git rev-parse --short HEAD`, "+dirty" with changes in packages/). */
  commit?: string | undefined
  plan: Plan
  machine: Machine
  /** The load average (1/5/15 min) as each repeat started. */
  load: Array<{ repeat: number; at: string; loadavg: number[] }>
  overhead: OverheadRun[]
  storm: StormRun[]
  late: LateRun[]
  proactive: ProactiveRun[]
  memory: MemoryRun[]
  /** The harness's own bytes per pending request, once per repeat (see `harnessRun`). */
  harness?: number[] | undefined
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

/** "min / median / max", each formatted by `f`; one value when they are all equal. */
export function range(s: Spread, f: (n: number) => string = int): string {
  if (Number.isNaN(s.median)) return '—'
  if (s.min === s.max) return f(s.median)
  return `${f(s.min)} / ${f(s.median)} / ${f(s.max)}`
}

const fixed2 = (n: number) => n.toFixed(2)
const bytes = (n: number) => String(Math.round(n))

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
  'ky + one no-op afterResponse hook (token by hand)': 'ky (bare, token by hand)',
  'axios (bare, an identical second cell)': 'axios (bare, token by hand)',
  'ky (bare, an identical second cell)': 'ky (bare, token by hand)',
  'fetch (bare, an identical second cell)': 'fetch (bare, token by hand)',
  '@reauth/fetch': 'fetch (bare, token by hand)',
}

/**
 * The DPoP overhead rows (RFC 9449: `Authorization: DPoP`, a proof signed per send) and the
 * Bearer row of the same client each is compared with, repeat by repeat. They are reported in
 * their own table, not against the bare client's 1.05 target.
 */
export const DPOP: Record<string, string> = {
  '@reauth/fetch (DPoP)': '@reauth/fetch',
  '@reauth/axios (DPoP)': '@reauth/axios',
}

/** The plain client whose in-flight request a row's waiting request is held to. */
const PLAIN: Record<string, string> = {
  ...BARE,
  'axios-auth-refresh (deduplicateRefresh: false)': 'axios (bare, token by hand)',
}

/** "Before send" target: 1.5 KB (1 500 B) per waiting request, every adapter (issue 15). */
export const BEFORE_SEND_TARGET = 1_500

export interface OverheadRow {
  variant: string
  mode: OverheadRun['mode']
  reqPerSec: Spread
  /** Per repeat: this variant's time over its bare client's time in the same repeat. */
  ratio: Spread | undefined
  /** The client process's CPU µs per request. */
  cpu: Spread | undefined
  /** Per repeat: this variant's CPU per request over its bare client's in the same repeat. */
  cpuRatio: Spread | undefined
  failures: number
}

export function overheadRows(results: Results): OverheadRow[] {
  const rows: OverheadRow[] = []
  for (const mode of ['sequential', 'concurrent'] as const) {
    const groups = by(results.overhead.filter((r) => r.mode === mode))
    for (const [variant, runs] of groups) {
      const bare = BARE[variant]
      const bareRuns = bare ? (groups.get(bare) ?? []) : []
      // Run i of every variant belongs to repeat i (every repeat runs every cell).
      const ratios = bare
        ? runs.flatMap((run, i) => {
            const base = bareRuns.find((b) => b.repeat === run.repeat) ?? bareRuns[i]
            return base ? [run.ms / base.ms] : []
          })
        : undefined
      const cpuRuns = runs.filter((r) => r.cpuMicros !== undefined)
      const cpuRatios = bare
        ? cpuRuns.flatMap((run, i) => {
            const base = bareRuns.find((b) => b.repeat === run.repeat) ?? bareRuns[i]
            return base?.cpuMicros ? [(run.cpuMicros as number) / base.cpuMicros] : []
          })
        : undefined
      rows.push({
        variant,
        mode,
        reqPerSec: spread(runs.map((r) => (results.plan.overheadCount / r.ms) * 1000)),
        ratio: ratios && spread(ratios),
        cpu:
          cpuRuns.length === 0
            ? undefined
            : spread(cpuRuns.map((r) => (r.cpuMicros as number) / results.plan.overheadCount)),
        cpuRatio: cpuRatios?.length ? spread(cpuRatios) : undefined,
        failures: runs.reduce((sum, r) => sum + r.failures, 0),
      })
    }
  }
  return rows
}

export interface DpopRow {
  /** The DPoP row's name, and its Bearer row's. */
  variant: string
  bearer: string
  mode: OverheadRun['mode']
  dpopReqPerSec: Spread
  bearerReqPerSec: Spread
  /** Per repeat: the DPoP row's time over the Bearer row's time in the same repeat. */
  ratio: Spread | undefined
  dpopCpu: Spread | undefined
  bearerCpu: Spread | undefined
  /** Per repeat: the DPoP row's CPU per request over the Bearer row's. */
  cpuRatio: Spread | undefined
  /** Per repeat: the DPoP row's CPU µs per request minus the Bearer row's. */
  cpuAdded: Spread | undefined
  failures: number
}

/** The DPoP rows against their Bearer rows, mode by mode (empty for runs without DPoP rows). */
export function dpopRows(results: Results): DpopRow[] {
  const rows: DpopRow[] = []
  const count = results.plan.overheadCount
  const cpuOf = (run: OverheadRun) =>
    run.cpuMicros === undefined ? undefined : run.cpuMicros / count
  for (const [variant, bearer] of Object.entries(DPOP)) {
    for (const mode of ['sequential', 'concurrent'] as const) {
      const runs = results.overhead.filter((r) => r.variant === variant && r.mode === mode)
      const bearerRuns = results.overhead.filter((r) => r.variant === bearer && r.mode === mode)
      if (runs.length === 0 || bearerRuns.length === 0) continue
      const pairs = runs.flatMap((run, i) => {
        const base = bearerRuns.find((b) => b.repeat === run.repeat) ?? bearerRuns[i]
        return base ? [[run, base] as const] : []
      })
      const cpuPairs = pairs.flatMap(([run, base]) => {
        const a = cpuOf(run)
        const b = cpuOf(base)
        return a === undefined || b === undefined ? [] : [[a, b] as const]
      })
      const cpu = (list: OverheadRun[]) => {
        const values = list.flatMap((r) => {
          const c = cpuOf(r)
          return c === undefined ? [] : [c]
        })
        return values.length === 0 ? undefined : spread(values)
      }
      rows.push({
        variant,
        bearer,
        mode,
        dpopReqPerSec: spread(runs.map((r) => (count / r.ms) * 1000)),
        bearerReqPerSec: spread(bearerRuns.map((r) => (count / r.ms) * 1000)),
        ratio: pairs.length === 0 ? undefined : spread(pairs.map(([r, b]) => r.ms / b.ms)),
        dpopCpu: cpu(runs),
        bearerCpu: cpu(bearerRuns),
        cpuRatio: cpuPairs.length === 0 ? undefined : spread(cpuPairs.map(([a, b]) => a / b)),
        cpuAdded: cpuPairs.length === 0 ? undefined : spread(cpuPairs.map(([a, b]) => a - b)),
        failures: runs.reduce((sum, r) => sum + r.failures, 0),
      })
    }
  }
  return rows
}

export interface MemoryRow {
  variant: string
  waiting: number
  stages: Partial<Record<MemoryStage, Spread>>
  /**
   * Before send minus the harness's own share measured in the same repeat (its two pending
   * async frames per request): what the client holds for a waiting request.
   */
  net?: Spread | undefined
  /** The plain client's in-flight request, for the same client. */
  plain: Spread | undefined
  successes: number
  runs: number
}

export function memoryRows(results: Results): MemoryRow[] {
  const runs = results.memory.map((r) => ({ ...r, stage: r.stage ?? ('before send' as const) }))
  const cell = (variant: string, stage: MemoryStage) => {
    const values = runs
      .filter((r) => r.variant === variant && r.stage === stage)
      .map((r) => r.bytesPerRequest)
    return values.length === 0 ? undefined : spread(values)
  }
  const waiters = [...new Set(runs.filter((r) => r.stage !== 'in flight').map((r) => r.variant))]
  return waiters.map((variant) => {
    const mine = runs.filter((r) => r.variant === variant)
    const stages: MemoryRow['stages'] = {}
    for (const stage of ['before send', 'after 401'] as const) {
      const s = cell(variant, stage)
      if (s) stages[stage] = s
    }
    const plain = PLAIN[variant]
    const harness = results.harness ?? []
    const gross = runs
      .filter((r) => r.variant === variant && r.stage === 'before send')
      .map((r) => r.bytesPerRequest)
    const net =
      gross.length > 0 && gross.length === harness.length
        ? spread(gross.map((value, i) => value - (harness[i] as number)))
        : undefined
    return {
      variant,
      waiting: median(mine.map((r) => r.waiting)),
      stages,
      net,
      plain: plain === undefined ? undefined : cell(plain, 'in flight'),
      successes: Math.min(...mine.map((r) => r.successes / r.waiting)),
      runs: mine.length,
    }
  })
}

function verdict(ok: boolean, good = 'meets target', bad = 'misses target'): string {
  return ok ? good : `**${bad}**`
}

function loadLine(results: Results): string {
  const m = results.machine
  const perRepeat = (results.load ?? []).map((l) => l.loadavg[0]?.toFixed(2) ?? '?').join(', ')
  return (
    `- Load: ${m.cores} CPUs; load average (1/5/15 min) at start ${m.loadAtStart.join(' / ')}` +
    (perRepeat ? `; 1-min load as each repeat started: ${perRepeat}` : '') +
    (m.loadAtEnd ? `; at the end ${m.loadAtEnd.join(' / ')}` : '') +
    '. A load above the CPU count means other work shared the cores during the run.'
  )
}

export function renderResults(results: Results, before?: Results): string {
  const { plan, machine: m } = results
  const repeats = `${plan.repeats} interleaved repeat${plan.repeats === 1 ? '' : 's'}`
  const out: string[] = []
  out.push(
    `# reauth benchmark results${results.smoke ? ' (smoke run: small counts, not figures to quote)' : ''}`,
  )
  out.push('')
  out.push(
    `Written by \`pnpm bench\` (bench/src/main.ts); what each figure means is in [README.md](README.md). ` +
      `Every figure is **min / median / max of ${repeats}** (repeat i runs every cell of every ` +
      `scenario before repeat i+1 starts, so drift hits all cells alike; a single number means the ` +
      `repeats agreed), run in one process against a loopback ` +
      `node:http server (127.0.0.1, keep-alive, in a forked child process) that rotates refresh tokens ` +
      `and counts reuse of a retired one. The token endpoint takes ${TOKEN_DELAY_MS} ms per grant ` +
      `(one token round trip, measured from the client: ${ms(median(results.tokenRoundTrip))}). ` +
      `The @reauth packages run as built (\`pnpm build\`: their dist files, as npm installs ` +
      `them), not from their sources. The raw figures are in the JSON file the run wrote ` +
      `(bench/results/).`,
  )
  out.push('')
  out.push(
    `- Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.platform}; Node ${m.node}. ` +
      `The loopback server runs in a child process on the same ${m.cores} cores as the clients, so ` +
      `throughput figures carry noise of several percent between runs.`,
  )
  out.push(loadLine(results))
  out.push(
    `- Versions: ${Object.entries(m.versions)
      .map(([name, v]) => `${name} ${v}`)
      .join(', ')}.`,
  )
  out.push(
    `- Total bench time: ${results.seconds.toFixed(0)} s${results.commit ? `; commit measured: ${results.commit}` : ''}.`,
  )
  out.push('')
  if (before) {
    out.push(compareSection(before, results))
    out.push('')
  }

  // 1. overhead
  out.push(`## 1. Overhead with a valid token (${plan.overheadCount} requests)`)
  out.push('')
  out.push(
    `Same client with the token attached by hand = 1.00; the ratio is taken per repeat (this ` +
      `client's time over the bare client's time in the same repeat), then min / median / max. ` +
      `Sequential: one request at a time; concurrent: ${plan.concurrency} in flight. Target ≤ 1.05 for reauth's rows ` +
      "(bold: the median misses it). _Client CPU_: the client process's CPU time (user + system, " +
      '`process.cpuUsage()`) per request, its median, and the same per-repeat ratio to bare: CPU time ' +
      'is not stretched by other processes waiting for the cores, so on a loaded machine it tells ' +
      "reauth's own cost apart from the load much better than req/s.",
  )
  out.push('')
  // The DPoP rows have a table of their own (below), against their Bearer rows.
  const rows = overheadRows(results).filter((r) => DPOP[r.variant] === undefined)
  const names = [...new Set(rows.map((r) => r.variant))]
  const ratioCell = (row: OverheadRow | undefined) =>
    row?.ratio === undefined
      ? '1.00 (baseline)'
      : row.ratio.median <= 1.05 || !row.variant.startsWith('@reauth/')
        ? range(row.ratio, fixed2)
        : `**${range(row.ratio, fixed2)}**`
  out.push(
    table(
      [
        'client',
        'sequential req/s',
        'ratio to bare',
        `concurrency ${plan.concurrency} req/s`,
        'ratio to bare',
        'client CPU, sequential: µs per request (ratio to bare)',
        `client CPU, concurrency ${plan.concurrency}: µs per request (ratio to bare)`,
        'failures',
      ],
      names.map((variant) => {
        const seq = rows.find((r) => r.variant === variant && r.mode === 'sequential')
        const con = rows.find((r) => r.variant === variant && r.mode === 'concurrent')
        const rate = (row: OverheadRow | undefined) =>
          row ? range(row.reqPerSec, (n) => String(Math.round(n))) : '—'
        const cpu = (row: OverheadRow | undefined) =>
          row?.cpu === undefined
            ? '—'
            : `${Math.round(row.cpu.median)} µs (${row.cpuRatio ? range(row.cpuRatio, fixed2) : 'baseline'})`
        return [
          variant,
          rate(seq),
          ratioCell(seq),
          rate(con),
          ratioCell(con),
          cpu(seq),
          cpu(con),
          String((seq?.failures ?? 0) + (con?.failures ?? 0)),
        ]
      }),
    ),
  )
  out.push('')
  out.push(overheadNotes(rows))
  out.push('')
  const dpop = dpopRows(results)
  if (dpop.length > 0) {
    out.push(dpopSection(dpop, plan.concurrency))
    out.push('')
  }

  // 2. storm
  const rtt = median(results.tokenRoundTrip)
  out.push(`## 2. Storm: ${plan.stormSize} concurrent requests meet an expired token`)
  out.push('')
  out.push(
    `Grants = refresh_token calls the server received (target 1); successes = requests that ended ` +
      `200 (target ${plan.stormSize}); reused = retired refresh tokens presented again (target 0; a real ` +
      `server would revoke the session). Added latency = storm latency minus the same burst's latency ` +
      `with a valid token, at p50 and p99; one token round trip is ${ms(rtt)}, so an ideal client adds ` +
      `about one 401 round trip + one token round trip + one replay. The verdict is on the worst repeat.`,
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
        const grants = spread(runs.map((r) => r.grants))
        const successes = spread(runs.map((r) => r.successes))
        const reuse = spread(runs.map((r) => r.reuse))
        const p50 = spread(runs.map((r) => r.stormP50 - r.validP50))
        const p99 = spread(runs.map((r) => r.stormP99 - r.validP99))
        const good =
          grants.min === 1 &&
          grants.max === 1 &&
          successes.min === plan.stormSize &&
          reuse.max === 0
        return [
          variant,
          range(grants),
          range(successes),
          range(reuse),
          range(p50, ms),
          range(p99, ms),
          range({ min: p50.min / rtt, median: p50.median / rtt, max: p50.max / rtt }, (n) =>
            n.toFixed(1),
          ),
          verdict(
            good,
            'meets targets',
            failing(grants.max, successes.min, reuse.max, plan.stormSize),
          ),
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
      `(target 0). The verdict is on the worst repeat.`,
  )
  out.push('')
  out.push(
    table(
      ['client', 'extra grants', 'successes', 'reused', 'verdict'],
      [...by(results.late)].map(([variant, runs]) => {
        const extra = spread(runs.map((r) => r.grants - 1))
        const successes = spread(runs.map((r) => r.successes))
        const reuse = spread(runs.map((r) => r.reuse))
        const good = extra.max === 0 && successes.min === plan.lateSize && reuse.max === 0
        return [
          variant,
          range(extra),
          `${range(successes)} of ${plan.lateSize}`,
          range(reuse),
          verdict(
            good,
            'meets targets',
            failing(extra.max + 1, successes.min, reuse.max, plan.lateSize),
          ),
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
      `401s seen = 401 responses the API sent (target 0). reauth runs with its defaults: the ` +
      `refresh-ahead window (60 s) is bounded by half the lifetime (${plan.ttlMs / 2} ms here) and ` +
      `the expiry margin (5 s) by a quarter (${plan.ttlMs / 4} ms). axios-jwt's default 10 s fudge is ` +
      `longer than the whole lifetime, so it is also run with a fudge of half the lifetime. The verdict ` +
      `is on the worst repeat.`,
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
        const requests = spread(runs.map((r) => r.requests))
        const seen = spread(runs.map((r) => r.seen401))
        const grants = spread(runs.map((r) => r.grants))
        const failures = spread(runs.map((r) => r.requests - r.successes))
        const reuse = spread(runs.map((r) => r.reuse))
        return [
          variant,
          range(requests),
          range(seen),
          range(grants),
          range(
            {
              min: grants.min / plan.lifetimes,
              median: grants.median / plan.lifetimes,
              max: grants.max / plan.lifetimes,
            },
            (n) => n.toFixed(1),
          ),
          range(failures),
          range(reuse),
          verdict(
            seen.max === 0 && failures.max === 0 && reuse.max === 0,
            'no 401',
            '401s or failures',
          ),
        ]
      }),
    ),
  )
  out.push('')

  // 5. memory
  const sent = (plan as { memorySentSize?: number }).memorySentSize ?? plan.memorySize
  out.push(`## 5. Memory: ${plan.memorySize} requests waiting on one held refresh`)
  out.push('')
  out.push(
    `Heap growth (\`process.memoryUsage().heapUsed\` after two \`global.gc()\` calls, with all ` +
      `requests pending, minus the same before they were made) divided by the number of pending ` +
      `requests, in bytes: ${plan.memorySize} at once before send, ${sent} at once after a 401 and in ` +
      `flight (each of those holds a connection of its own). It includes the client's own per-request state and the harness's ` +
      `one pending promise per request, the same for every row. _Before send_: reauth rows wait before ` +
      `sending (the token is known to be expired); the peers (no proactive refresh) wait in ` +
      `axios-auth-refresh's queue after one request's 401 started the refresh. _After its 401_: sent ` +
      `with a token the server no longer accepts, answered 401, waiting on the one refresh. _Plain ` +
      `client in flight_: the same client with the token attached by hand, its request sent and the ` +
      `server holding the answer. The stages that send first open as many keep-alive connections as ` +
      `they use, so pooled sockets are in the heap before and after alike. _Net of the harness_: ` +
      `the harness's own share — ${results.harness?.length ? `${range(spread(results.harness), bytes)} B per request, ` : ''}` +
      `measured in each repeat as the same number of \`settle(async () => …)\` calls (how every ` +
      `row's \`get()\` waits) pending on one held promise with no client under them — subtracted ` +
      `per repeat: what the client itself holds. Targets (issue 15): before send ≤ ` +
      `${BEFORE_SEND_TARGET} B for every adapter (net of the harness); after a 401 no more than the ` +
      `plain client in flight (medians; the harness is in both).`,
  )
  out.push('')
  const memory = memoryRows(results)
  out.push(
    table(
      [
        'client',
        'before send, B per request',
        'before send, net of the harness',
        'after its 401, B per request',
        'plain client in flight, B per request',
        'successes after release',
        'verdict',
      ],
      memory.map((row) => {
        const beforeSend = row.stages['before send']
        const after401 = row.stages['after 401']
        const reauth = row.variant.startsWith('@reauth/')
        const misses: string[] = []
        const own = row.net ?? beforeSend
        if (reauth && own && own.median > BEFORE_SEND_TARGET) misses.push('before send')
        if (reauth && after401 && row.plain && after401.median > row.plain.median)
          misses.push('after 401')
        return [
          row.variant,
          beforeSend ? range(beforeSend, bytes) : '—',
          row.net ? range(row.net, bytes) : '—',
          after401 ? range(after401, bytes) : '—',
          row.plain ? range(row.plain, bytes) : '—',
          row.successes === 1 ? 'all' : `**${(row.successes * 100).toFixed(1)} % (worst run)**`,
          reauth
            ? verdict(misses.length === 0, 'meets targets', `misses: ${misses.join(', ')}`)
            : 'peer (no target)',
        ]
      }),
    ),
  )
  out.push('')
  out.push(memoryNotes(memory))
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

/**
 * Before / after, for a change that must show no regression: each figure's min / median / max
 * in both runs. A cell is flagged **worse** when the after run's whole range lies above the
 * before run's (after min > before max), the only difference the spread of the repeats can
 * tell apart from noise.
 */
export function compareSection(before: Results, after: Results): string {
  const out: string[] = []
  const when = (r: Results) =>
    `${r.commit ? `commit ${r.commit}, ` : ''}${r.plan.repeats} repeats, load ${r.machine.loadAtStart[0]} at start, ${r.seconds.toFixed(0)} s`
  out.push('## Before and after')
  out.push('')
  out.push(
    `Before: ${when(before)}. After: ${when(after)}. Each cell is min / median / max of the run's ` +
      `repeats; **worse** means the after range lies wholly above the before range (after min > ` +
      `before max), **better** the reverse; otherwise the two overlap and the difference is noise.`,
  )
  out.push('')
  const judge = (b: Spread | undefined, a: Spread | undefined) =>
    !a || !b ? '—' : a.min > b.max ? '**worse**' : a.max < b.min ? 'better' : 'same (overlap)'
  const ob = overheadRows(before)
  const oa = overheadRows(after)
  out.push(
    table(
      [
        'overhead: ratio to bare',
        'mode',
        'before',
        'after',
        'change',
        'client CPU ratio before',
        'client CPU ratio after',
        'change',
      ],
      oa
        .filter((row) => row.ratio)
        .map((row) => {
          const old = ob.find((r) => r.variant === row.variant && r.mode === row.mode)
          const b = old?.ratio
          return [
            row.variant,
            row.mode === 'concurrent' ? `concurrency ${after.plan.concurrency}` : 'sequential',
            b ? range(b, fixed2) : '—',
            row.ratio ? range(row.ratio, fixed2) : '—',
            judge(b, row.ratio),
            old?.cpuRatio ? range(old.cpuRatio, fixed2) : '—',
            row.cpuRatio ? range(row.cpuRatio, fixed2) : '—',
            judge(old?.cpuRatio, row.cpuRatio),
          ]
        }),
    ),
  )
  out.push('')
  const mb = memoryRows(before)
  const ma = memoryRows(after)
  const memoryCells: string[][] = []
  for (const row of ma) {
    const old = mb.find((r) => r.variant === row.variant)
    for (const stage of ['before send', 'after 401'] as const) {
      const a = row.stages[stage]
      if (!a) continue
      const b = old?.stages[stage]
      memoryCells.push([
        row.variant,
        stage,
        b ? range(b, bytes) : '—',
        range(a, bytes),
        judge(b, a),
      ])
    }
  }
  out.push(
    table(['memory: B per waiting request', 'stage', 'before', 'after', 'change'], memoryCells),
  )
  out.push('')
  const sb = by(before.storm)
  out.push(
    table(
      ['storm: added p50', 'before', 'after', 'change', 'grants before → after'],
      [...by(after.storm)].map(([variant, runs]) => {
        const old = sb.get(variant) ?? []
        const b = old.length ? spread(old.map((r) => r.stormP50 - r.validP50)) : undefined
        const a = spread(runs.map((r) => r.stormP50 - r.validP50))
        return [
          variant,
          b ? range(b, ms) : '—',
          range(a, ms),
          judge(b, a),
          `${old.length ? range(spread(old.map((r) => r.grants))) : '—'} → ${range(spread(runs.map((r) => r.grants)))}`,
        ]
      }),
    ),
  )
  out.push('')
  const pb = by(before.proactive)
  out.push(
    table(
      ['proactive', '401s before', '401s after', 'grants before', 'grants after'],
      [...by(after.proactive)].map(([variant, runs]) => {
        const old = pb.get(variant) ?? []
        const cell = (list: ProactiveRun[], f: (r: ProactiveRun) => number) =>
          list.length ? range(spread(list.map(f))) : '—'
        return [
          variant,
          cell(old, (r) => r.seen401),
          cell(runs, (r) => r.seen401),
          cell(old, (r) => r.grants),
          cell(runs, (r) => r.grants),
        ]
      }),
    ),
  )
  out.push('')
  out.push(
    table(
      ['size (min+gzip)', 'before', 'after', 'change'],
      after.sizes.map((size) => {
        const old = before.sizes.find((s) => s.name === size.name)
        return [
          size.name,
          old ? `${old.gzip} B` : '—',
          `${size.gzip} B`,
          old ? `${size.gzip - old.gzip >= 0 ? '+' : ''}${size.gzip - old.gzip} B` : '—',
        ]
      }),
    ),
  )
  return out.join('\n')
}

function failing(grants: number, successes: number, reuse: number, size: number): string {
  const parts: string[] = []
  if (grants !== 1) parts.push(`${int(grants)} grants`)
  if (successes !== size) parts.push(`${int(size - successes)} of ${size} failed`)
  if (reuse !== 0) parts.push(`${int(reuse)} refresh tokens reused`)
  return parts.join(', ')
}

function overheadNotes(rows: OverheadRow[]): string {
  const reauth = rows.filter((r) => r.variant.startsWith('@reauth/'))
  const over = reauth.filter((r) => (r.ratio?.median ?? 0) > 1.05)
  const cpuOver = reauth.filter((r) => (r.cpuRatio?.median ?? 0) > 1.05)
  const lines: string[] = []
  lines.push(
    over.length === 0
      ? 'Every reauth adapter is within the 1.05 target in both modes (median time ratio).'
      : `**Where reauth is over the 1.05 target** (median time ratio: ${over
          .map((r) => `${r.variant} ${r.mode} ${r.ratio?.median.toFixed(2)}`)
          .join('; ')}).`,
  )
  if (cpuOver.length > 0) {
    lines.push(
      `Client CPU per request over 1.05× the bare client's (median): ${cpuOver
        .map((r) => `${r.variant} ${r.mode} ${r.cpuRatio?.median.toFixed(2)}`)
        .join('; ')}.`,
    )
  }
  // The noise floor: the bare client run again as a cell of its own, against the bare cell.
  const twinOf = (r: OverheadRow) =>
    rows.find(
      (t) =>
        t.mode === r.mode &&
        t.variant.endsWith('(bare, an identical second cell)') &&
        BARE[t.variant] === BARE[r.variant],
    )
  const fmt = (s: Spread | undefined) => (s ? range(s, (n) => n.toFixed(2)) : '—')
  const flagged = [...new Set([...over, ...cpuOver])]
  const floor = flagged.filter((r) => {
    const t = twinOf(r)
    const within = (a: Spread | undefined, b: Spread | undefined) =>
      a === undefined || b === undefined || a.min <= b.max
    return t !== undefined && within(r.ratio, t.ratio) && within(r.cpuRatio, t.cpuRatio)
  })
  if (floor.length > 0) {
    lines.push(
      `Not told apart from the harness's noise: ${floor
        .map((r) => {
          const t = twinOf(r) as OverheadRow
          return `${r.variant} ${r.mode} (time ${fmt(r.ratio)}, CPU ${fmt(r.cpuRatio)}; the identical second bare cell: time ${fmt(t.ratio)}, CPU ${fmt(t.cpuRatio)})`
        })
        .join('; ')} — its range meets the range an identical copy of the bare client gets ` +
        'against the bare cell, i.e. what this harness measures for no difference at all. ' +
        "What reauth itself costs per request is measured apart from this noise in PROFILE.md's " +
        "_reauth's own work_ column: reauth's functions and what they call, in a CPU profile of each cell.",
    )
  }
  const hooked = rows.filter((r) => r.variant.startsWith('ky + one no-op afterResponse hook'))
  if (hooked.length > 0) {
    lines.push(
      `What an \`afterResponse\` hook costs ky: bare ky with one that does nothing runs at ${hooked
        .map(
          (r) =>
            `${r.ratio?.median.toFixed(2)}× (CPU ${r.cpuRatio?.median.toFixed(2)}×) ${r.mode === 'concurrent' ? 'at concurrency 100' : 'sequentially'}`,
        )
        .join(', ')} the bare client's, because ky clones every response (a tee of its body) ` +
        'for each `afterResponse` hook. `withReauth` has none: it sees responses in ky’s ' +
        '`fetch` (packages/ky README); `reauthHooks` and the DIY recipe pay it.',
    )
  }
  lines.push(
    'Where the time goes, from `node --cpu-prof` of these cells: [PROFILE.md](PROFILE.md) ' +
      '(`pnpm --filter @reauth/bench profile`).',
  )
  return lines.join(' ')
}

/** §1's DPoP table: each DPoP row beside its Bearer row, from the same repeats. */
function dpopSection(rows: DpopRow[], concurrency: number): string {
  const rate = (s: Spread) => range(s, (n) => String(Math.round(n)))
  const micros = (s: Spread | undefined) => (s === undefined ? '—' : range(s, (n) => n.toFixed(0)))
  return [
    '### DPoP (RFC 9449) against Bearer, same client, same run',
    '',
    'The same reauth client with DPoP-bound tokens: `Authorization: DPoP <token>` and a `DPoP` proof ' +
      '(ES256 JWT: `htm`, `htu`, `iat`, `jti`, `ath`) signed by the engine for every send, beside the ' +
      'Bearer row of the same client, both cells in every repeat. The ratio is taken per repeat (the ' +
      "DPoP cell's time, or CPU per request, over the Bearer cell's in the same repeat), then min / " +
      "median / max; _added CPU_ is the DPoP cell's client CPU per request minus the Bearer cell's. " +
      'The loopback server takes a DPoP request when it carries a proof, without verifying it: the ' +
      "figure is the client's cost (a server verifying proofs adds its own). No target: this is the " +
      'price of sender-constrained tokens.',
    '',
    table(
      [
        'client',
        'mode',
        'Bearer req/s',
        'DPoP req/s',
        'time ratio DPoP / Bearer',
        'client CPU µs per request, Bearer',
        'client CPU µs per request, DPoP',
        'CPU ratio DPoP / Bearer',
        'added CPU µs per request',
        'failures',
      ],
      rows.map((row) => [
        row.variant,
        row.mode === 'concurrent' ? `concurrency ${concurrency}` : 'sequential',
        rate(row.bearerReqPerSec),
        rate(row.dpopReqPerSec),
        row.ratio ? range(row.ratio, fixed2) : '—',
        micros(row.bearerCpu),
        micros(row.dpopCpu),
        row.cpuRatio ? range(row.cpuRatio, fixed2) : '—',
        micros(row.cpuAdded),
        String(row.failures),
      ]),
    ),
  ].join('\n')
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

/**
 * Why a reauth row misses a memory target, from heap snapshots of the waiting requests
 * (bench/src/memory-one.ts with a snapshot before and after; the figures named here are
 * the run's own).
 */
const MEMORY_REASONS: Record<string, string> = {
  '@reauth/axios before send':
    'a call parked by `attachReauth` in the instance’s methods (axios has built nothing) holds ' +
    'the caller’s arguments, one promise, one object describing the call, its place in the ' +
    'parking lot and the engine’s wait; a call made as `api(config)` waits in the interceptor ' +
    'after axios merged its config (axios-auth-refresh, which waits there, holds {peer} B).',
  '@reauth/axios after 401':
    'the waiter keeps the 401’s `AxiosError`, because a refresh that fails hands the caller ' +
    '`error.response`, that very `AxiosError` (packages/axios README). In a heap snapshot of ' +
    '2 000 waiters against 2 000 plain requests in flight (per request): the error (96 B) with ' +
    'its unformatted stack trace (5 `CallSiteInfo`, 280 B), and through its `ClientRequest` the ' +
    '401’s `IncomingMessage` with its read state, buffers, header strings and axios’s four ' +
    'stream handlers (about 1.2 kB); the plain client in flight holds its socket instead. ' +
    'Reading the stack (a string) made it larger, not smaller. Dropping the error would change ' +
    'what callers get.',
  '@reauth/ky before send':
    'a call parked by `withReauth` (ky has built nothing) holds the caller’s arguments, its ' +
    'promise with ky’s body shortcuts, one object describing the call, its place in the ' +
    'parking lot and the engine’s wait (a promise chain, no async frames), and the one body ' +
    'shortcut asked of it (`.json()`: a promise ky answers when the call goes).',
  '@reauth/ky after 401':
    '`withReauth` sees the 401 in ky’s `fetch` and cancels its body before the wait; the ' +
    'waiter holds ky’s call state (as the plain request in flight does), the `Request`, the ' +
    'description of the failure and the engine’s wait.',
  '@reauth/fetch before send':
    'a parked call holds the caller’s arguments, its description for `run` and the engine’s ' +
    'wait.',
}

function memoryNotes(rows: MemoryRow[]): string {
  const lines: string[] = []
  const peer = rows.find((r) => r.variant.startsWith('axios-auth-refresh'))?.stages['before send']
  const reason = (key: string) => {
    const text = MEMORY_REASONS[key]
    return text ? ` Why: ${text.replace('{peer}', peer ? bytes(peer.median) : '—')}` : ''
  }
  for (const row of rows.filter((r) => r.variant.startsWith('@reauth/'))) {
    const beforeSend = row.stages['before send']
    const after401 = row.stages['after 401']
    const own = row.net ?? beforeSend
    if (own && own.median > BEFORE_SEND_TARGET) {
      lines.push(
        `- ${row.variant} before send: ${bytes(own.median)} B per waiting request` +
          `${row.net ? ' (net of the harness)' : ''}, ` +
          `${(own.median / BEFORE_SEND_TARGET).toFixed(1)}× the ${BEFORE_SEND_TARGET} B target.` +
          reason(`${row.variant} before send`),
      )
    }
    if (after401 && row.plain && after401.median > row.plain.median) {
      lines.push(
        `- ${row.variant} after its 401: ${bytes(after401.median)} B, ` +
          `${(after401.median / row.plain.median).toFixed(2)}× the plain client's in-flight ` +
          `request (${bytes(row.plain.median)} B).` +
          reason(`${row.variant} after 401`),
      )
    }
  }
  if (lines.length === 0) return 'Every reauth adapter meets both memory targets (medians).'
  return [
    '**Where reauth misses a memory target** (medians), with the reason measured in heap ' +
      'snapshots of the waiting requests (`bench/src/memory-one.ts`):',
    ...lines,
    'The @reauth packages are measured as built (their dist files, as npm installs them).',
  ].join('\n')
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
