/**
 * `pnpm bench`: every scenario against the loopback server, repeated and interleaved (repeat
 * i runs every cell before repeat i+1), then `bench/RESULTS.md` and the raw figures in
 * `bench/results/latest.json`.
 * `pnpm bench --smoke` (or `REAUTH_BENCH_SMOKE=1`): small counts, one repeat, tables on stdout
 * only; exits 1 when a reauth row misses a correctness target (grants, successes, reuse, 401s).
 * `--repeats N` changes the number of repeats; `--out FILE` where the raw figures go;
 * `--before FILE` puts a before/after section in RESULTS.md (see compare.ts).
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { dirname, resolve } from 'node:path'
import { APP_TARGETS, BUDGETS, measure, PEER_TARGETS, REAUTH_TARGETS, type Size } from '../size.js'
import type { Variant } from './clients.js'
import * as clients from './clients.js'
import { startServer } from './control.js'
import { machine, type Results, renderResults } from './report.js'
import {
  harnessRun,
  type LateRun,
  lateRun,
  type MemoryRun,
  type MemoryStage,
  memoryRun,
  type OverheadRun,
  overheadRun,
  type ProactiveRun,
  proactiveRun,
  type StormRun,
  stormRun,
  tokenRoundTrip,
} from './scenarios.js'
import { writeCharts } from './write-charts.js'

const smoke = process.argv.includes('--smoke') || process.env.REAUTH_BENCH_SMOKE === '1'

/** The value after `--name` (or in `--name=value`), if given. */
function option(name: string): string | undefined {
  const args = process.argv.slice(2)
  const at = args.findIndex((a) => a === `--${name}` || a.startsWith(`--${name}=`))
  if (at < 0) return undefined
  const arg = args[at] as string
  return arg.includes('=') ? arg.slice(arg.indexOf('=') + 1) : args[at + 1]
}

const repeatsOption = option('repeats')
// pnpm runs the script in bench/; paths given on the command line are taken from where the
// user ran it (INIT_CWD), as they typed them.
const cwd = process.env.INIT_CWD ?? process.cwd()
const outOption = option('out')
const beforeOption = option('before')

const BASE_PLAN = smoke
  ? {
      repeats: 1,
      overheadCount: 500,
      concurrency: 100,
      stormSize: 100,
      lateSize: 20,
      ttlMs: 200,
      lifetimes: 5,
      workers: 8,
      memorySize: 500,
      memorySentSize: 200,
    }
  : {
      // At least five repeats, so each figure has a min / median / max; counts sized so the
      // whole run stays within a few minutes on 2 shared cores.
      repeats: 5,
      overheadCount: 3_000,
      concurrency: 100,
      stormSize: 1_000,
      lateSize: 50,
      ttlMs: 200,
      lifetimes: 10,
      workers: 8,
      memorySize: 10_000,
      // After a 401 and in flight each request holds its own connection: 10 000 of them take a
      // minute per cell on 2 loaded cores, so these stages measure 2 000 (per-request heap
      // measured at 10 000 once: within a few percent of it, see README).
      memorySentSize: 2_000,
    }
export const PLAN = {
  ...BASE_PLAN,
  repeats: repeatsOption === undefined ? BASE_PLAN.repeats : Math.max(1, Number(repeatsOption)),
}
export type Plan = typeof PLAN

/** Each overhead cell's requests run in this many slices, interleaved with the other cells'. */
const OVERHEAD_SLICES = 10
/** The overhead cells; the DPoP rows are compared with their Bearer rows (report.ts, DPOP). */
const OVERHEAD: Variant[] = [
  clients.bareAxios,
  clients.twin(clients.bareAxios),
  clients.reauthAxios,
  clients.reauthAxiosDpop,
  clients.axiosAuthRefresh,
  clients.bareKy,
  clients.twin(clients.bareKy),
  clients.kyAfterResponseHook,
  clients.reauthKy,
  clients.bareFetch,
  clients.twin(clients.bareFetch),
  clients.reauthFetch,
  clients.reauthFetchDpop,
]
const STORM: Variant[] = [
  clients.reauthAxios,
  clients.reauthKy,
  clients.reauthFetch,
  clients.axiosAuthRefresh,
  clients.axiosAuthRefreshNoDedupe,
  clients.kyRecipe,
]
/** reauth's leeway bound (half the lifetime) as axios-jwt's fudge, in seconds. */
// The three adapters share the engine's proactive path: two of them are enough for the figure.
const PROACTIVE: Variant[] = [
  clients.reauthAxios,
  clients.reauthFetch,
  clients.axiosJwt(),
  clients.axiosJwt(PLAN.ttlMs / 2 / 1000),
]
/** Every pending request the memory scenario measures: each adapter at each stage, the plain clients in flight, the peers' queue. */
const MEMORY: Array<[Variant, MemoryStage]> = [
  [clients.reauthAxios, 'before send'],
  [clients.reauthKy, 'before send'],
  [clients.reauthFetch, 'before send'],
  [clients.reauthAxios, 'after 401'],
  [clients.reauthKy, 'after 401'],
  [clients.reauthFetch, 'after 401'],
  [clients.bareAxios, 'in flight'],
  [clients.bareKy, 'in flight'],
  [clients.bareFetch, 'in flight'],
  [clients.axiosAuthRefresh, 'before send'],
]

/**
 * The list in an order drawn from `seed` (a fixed shuffle per slice, so a run can be repeated).
 * Not a rotation: with one, each cell always ran right after the same neighbour, and the first
 * cell of each client (its bare baseline) came out 7-16 % slower than an identical copy of it.
 */
function shuffled<T>(list: readonly T[], seed: number): T[] {
  let state = (seed * 2_654_435_761 + 1) >>> 0
  const random = () => {
    // mulberry32
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
  }
  const out = [...list]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    ;[out[i], out[j]] = [out[j] as T, out[i] as T]
  }
  return out
}

/** The order of a list rotated by `by`, so no variant always runs first. */
function rotate<T>(list: readonly T[], by: number): T[] {
  const shift = by % list.length
  return [...list.slice(shift), ...list.slice(0, shift)]
}

function log(line: string): void {
  process.stdout.write(`${line}\n`)
}

/** The commit measured, and whether packages/ had uncommitted changes ("+dirty"). */
function commit(): string | undefined {
  try {
    const git = (...args: string[]) =>
      execFileSync('git', args, { cwd: new URL('..', import.meta.url), encoding: 'utf8' }).trim()
    const dirty = git('status', '--porcelain', '--', '../packages') !== ''
    return `${git('rev-parse', '--short', 'HEAD')}${dirty ? '+dirty' : ''}`
  } catch {
    return undefined
  }
}

async function main(): Promise<number> {
  const started = performance.now()
  const server = await startServer()
  const results: Results = {
    smoke,
    commit: commit(),
    plan: PLAN,
    machine: machine(),
    load: [],
    overhead: [],
    storm: [],
    late: [],
    proactive: [],
    memory: [],
    harness: [],
    sizes: [],
    budgets: BUDGETS,
    tokenRoundTrip: [],
    seconds: 0,
  }
  try {
    log(`reauth bench${smoke ? ' (smoke)' : ''}: ${PLAN.repeats} repeat(s)`)
    // Warm-up, not recorded: JIT and connection pools for every client.
    for (const variant of OVERHEAD) {
      await overheadRun(server, variant, 'concurrent', Math.min(2_000, PLAN.overheadCount), 100)
    }
    for (let repeat = 0; repeat < PLAN.repeats; repeat++) {
      const load = loadavg().map((n) => Math.round(n * 100) / 100)
      results.load.push({ repeat: repeat + 1, at: new Date().toISOString(), loadavg: load })
      log(`repeat ${repeat + 1}/${PLAN.repeats} (load ${load.join(' / ')})`)
      for (const mode of ['sequential', 'concurrent'] as const) {
        // Each cell's requests run in slices, every cell's slice after the other's (in an order
        // shuffled per slice), so a bare client and its reauth row share the machine's moments:
        // load that comes and goes hits both alike, and no cell always follows the same one.
        const sums = new Map<Variant, OverheadRun>()
        const slice = Math.ceil(PLAN.overheadCount / OVERHEAD_SLICES)
        for (let s = 0; s < OVERHEAD_SLICES; s++) {
          for (const variant of shuffled(
            OVERHEAD,
            repeat * OVERHEAD_SLICES + s + (mode === 'sequential' ? 0 : 7_919),
          )) {
            const run = await overheadRun(server, variant, mode, slice, PLAN.concurrency)
            const sum = sums.get(variant)
            if (!sum) {
              sums.set(variant, { ...run, repeat: repeat + 1 })
            } else {
              sum.ms += run.ms
              sum.cpuMicros = (sum.cpuMicros ?? 0) + (run.cpuMicros ?? 0)
              sum.failures += run.failures
            }
          }
        }
        for (const variant of OVERHEAD) {
          const run = sums.get(variant) as OverheadRun
          results.overhead.push(run)
          log(`  overhead ${mode} ${variant.name}: ${run.ms.toFixed(0)} ms`)
        }
      }
      results.tokenRoundTrip.push(await tokenRoundTrip(server, 10))
      for (const variant of rotate(STORM, repeat)) {
        const run: StormRun = await stormRun(server, variant, PLAN.stormSize)
        results.storm.push(run)
        log(
          `  storm ${variant.name}: ${run.grants} grants, ${run.successes} ok, ${run.reuse} reused`,
        )
      }
      for (const variant of rotate(STORM, repeat)) {
        const run: LateRun = await lateRun(server, variant, PLAN.lateSize)
        results.late.push(run)
        log(`  late ${variant.name}: ${run.grants} grants, ${run.successes} ok`)
      }
      for (const variant of rotate(PROACTIVE, repeat)) {
        const run: ProactiveRun = await proactiveRun(
          server,
          variant,
          PLAN.ttlMs,
          PLAN.lifetimes,
          PLAN.workers,
        )
        results.proactive.push(run)
        log(`  proactive ${variant.name}: ${run.seen401} 401s, ${run.grants} grants`)
      }
      const harness = await harnessRun(PLAN.memorySize)
      results.harness?.push(harness)
      log(`  memory harness alone: ${harness.toFixed(0)} B/request`)
      for (const [variant, stage] of rotate(MEMORY, repeat)) {
        const size = stage === 'before send' ? PLAN.memorySize : PLAN.memorySentSize
        const run: MemoryRun = await memoryRun(server, variant, stage, size)
        results.memory.push(run)
        log(`  memory ${variant.name} ${stage}: ${run.bytesPerRequest.toFixed(0)} B/request`)
      }
    }
    const sizes: Size[] = []
    for (const target of [...REAUTH_TARGETS, ...APP_TARGETS, ...PEER_TARGETS]) {
      sizes.push(await measure(target))
    }
    results.sizes = sizes
  } finally {
    await server.close()
  }
  results.seconds = (performance.now() - started) / 1000
  results.machine.loadAtEnd = loadavg().map((n) => Math.round(n * 100) / 100)
  const before =
    beforeOption === undefined
      ? undefined
      : (JSON.parse(readFileSync(resolve(cwd, beforeOption), 'utf8')) as Results)
  const markdown = renderResults(results, before)
  if (smoke) {
    log(markdown)
  } else {
    const out =
      outOption === undefined
        ? new URL('../results/latest.json', import.meta.url).pathname
        : resolve(cwd, outOption)
    mkdirSync(dirname(out), { recursive: true })
    writeFileSync(out, `${JSON.stringify(results, null, 1)}\n`)
    log(`wrote ${out}`)
    writeFileSync(new URL('../RESULTS.md', import.meta.url), markdown)
    log(markdown)
    log('wrote bench/RESULTS.md')
    const charts = await startServer()
    try {
      await writeCharts(charts, log)
    } finally {
      await charts.close()
    }
  }
  return smoke ? failedTargets(results).length : 0
}

/** The reauth rows' correctness targets, checked in smoke mode. */
function failedTargets(results: Results): string[] {
  const failed: string[] = []
  const reauth = (name: string) => name.startsWith('@reauth/')
  for (const run of results.storm.filter((r) => reauth(r.variant))) {
    if (run.grants !== 1 || run.successes !== PLAN.stormSize || run.reuse !== 0) {
      failed.push(`storm ${run.variant}`)
    }
  }
  for (const run of results.late.filter((r) => reauth(r.variant))) {
    if (run.grants !== 1 || run.successes !== PLAN.lateSize) failed.push(`late ${run.variant}`)
  }
  for (const run of results.proactive.filter((r) => reauth(r.variant))) {
    if (run.seen401 !== 0 || run.reuse !== 0 || run.successes !== run.requests) {
      failed.push(`proactive ${run.variant}`)
    }
  }
  for (const run of results.memory.filter((r) => reauth(r.variant))) {
    if (run.successes !== run.waiting) failed.push(`memory ${run.variant} ${run.stage}`)
  }
  for (const line of failed) log(`target missed: ${line}`)
  return failed
}

main().then(
  (code) => process.exit(code === 0 ? 0 : 1),
  (error: unknown) => {
    console.error(error)
    process.exit(1)
  },
)
