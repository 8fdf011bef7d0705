/**
 * `pnpm --filter @reauth/bench profile`: where the overhead cells spend their time. Each cell
 * (bare and reauth client × axios, ky, fetch × sequential, concurrency 100; valid token) runs in
 * its own `node --cpu-prof` process against the loopback server; only the samples taken while
 * the measured requests ran are counted (the profile's timestamps against the window the cell
 * reports). Writes bench/PROFILE.md and keeps the raw `.cpuprofile` files in
 * bench/results/profiles/ (not committed; open them in Chrome DevTools).
 *
 * `--count N` requests per cell (default 5 000); `--print` prints instead of writing.
 */
import { spawn } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { fileURLToPath } from 'node:url'
import type { Variant } from './clients.js'
import * as clients from './clients.js'
import { startServer } from './control.js'
import { pool } from './stats.js'

const CELLS: Array<[bare: Variant, reauth: Variant]> = [
  [clients.bareAxios, clients.reauthAxios],
  [clients.bareKy, clients.reauthKy],
  [clients.bareFetch, clients.reauthFetch],
]
const BY_NAME = new Map(CELLS.flat().map((v) => [v.name, v]))
type Mode = 'sequential' | 'concurrent'
const CONCURRENCY = 100

function option(name: string): string | undefined {
  const args = process.argv.slice(2)
  const at = args.indexOf(`--${name}`)
  return at < 0 ? undefined : args[at + 1]
}

// ------------------------------------------------------------------ one cell (child process)

/** Run one cell; print its pid and measured window (µs, the profile's clock) as JSON. */
async function cell(name: string, mode: Mode, count: number): Promise<void> {
  const variant = BY_NAME.get(name)
  if (!variant) throw new Error(`no variant "${name}"`)
  const server = await startServer()
  try {
    const sentAt = Date.now()
    const tokens = await server.reset({})
    const client = await variant.make({ server, tokens, sentAt, engine: {} })
    const width = mode === 'sequential' ? 1 : CONCURRENCY
    await pool(2_000, width, () => client.get()) // warm-up: JIT, connection pool
    // V8's profile timestamps and hrtime share the monotonic clock (µs).
    const start = Number(process.hrtime.bigint() / 1000n)
    const results = await pool(count, width, () => client.get())
    const end = Number(process.hrtime.bigint() / 1000n)
    const failures = results.filter((ok) => !ok).length
    process.stdout.write(`${JSON.stringify({ pid: process.pid, start, end, failures })}\n`)
  } finally {
    await server.close()
  }
}

// ------------------------------------------------------------------ summary

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number }
  children?: number[]
}
interface CpuProfile {
  nodes: ProfileNode[]
  startTime: number
  samples: number[]
  timeDeltas: number[]
}

const root = fileURLToPath(new URL('../../', import.meta.url))

/** The frame's file, relative to the repository (or the module/package it comes from). */
function where(url: string): string {
  if (url === '') return '(native)'
  const path = url.startsWith('file://') ? fileURLToPath(url) : url
  const modules = path.lastIndexOf('/node_modules/')
  if (modules >= 0) return path.slice(modules + '/node_modules/'.length)
  return path.startsWith(root) ? path.slice(root.length) : path
}

/** A frame of reauth's own code (a package's source, not a dependency, not the bench). */
function isReauth(url: string): boolean {
  return /\/packages\/[^/]+\/src\//.test(url) && !url.includes('/node_modules/')
}

/**
 * reauth frames that hand the call to the client: below them is the client's own work (the
 * request axios, ky or fetch makes, which the bare client makes too), not reauth's.
 */
const HANDOFF: Record<string, ReadonlySet<string>> = {
  'axios/src/park.ts': new Set(['callWrapped', 'wrapper']),
  'ky/src/with-reauth.ts': new Set(['send', 'direct', 'call', 'apply', 'method', '(anonymous)']),
  'ky/src/reauth-hooks.ts': new Set(['reauthKyFetch']),
  'fetch/src/create-fetch.ts': new Set(['reauthFetch', 'send']),
}

function handsOff(node: ProfileNode): boolean {
  const file = /\/packages\/(.+)$/.exec(node.callFrame.url)?.[1]
  const names = file === undefined ? undefined : HANDOFF[file]
  return names?.has(node.callFrame.functionName || '(anonymous)') === true
}

const label = (node: ProfileNode) =>
  `\`${node.callFrame.functionName || '(anonymous)'}\` ${where(node.callFrame.url)}`

interface Summary {
  samples: number
  /** Non-idle CPU time in the window, µs. */
  cpuMicros: number
  /** Non-idle µs with a reauth frame anywhere on the stack. */
  reauthMicros: number
  /** Non-idle µs whose leaf is a reauth function. */
  reauthSelfMicros: number
  /**
   * Non-idle µs of reauth's own work: a reauth frame on the stack, and the nearest one is not
   * where reauth hands the call to the client ({@link HANDOFF}).
   */
  reauthWorkMicros: number
  /** Self time by leaf function, µs. */
  self: Map<string, number>
  /** Time with a reauth frame on the stack, by leaf function ← nearest reauth frame. */
  underReauth: Map<string, number>
}

function summarise(profile: CpuProfile, start: number, end: number): Summary {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const node of profile.nodes)
    for (const child of node.children ?? []) parent.set(child, node.id)
  const nearestReauth = new Map<number, ProfileNode | null>()
  const reauthAncestor = (id: number): ProfileNode | null => {
    const known = nearestReauth.get(id)
    if (known !== undefined) return known
    const node = nodes.get(id) as ProfileNode
    const up = parent.get(id)
    const found = isReauth(node.callFrame.url) ? node : up === undefined ? null : reauthAncestor(up)
    nearestReauth.set(id, found)
    return found
  }
  const summary: Summary = {
    samples: 0,
    cpuMicros: 0,
    reauthMicros: 0,
    reauthSelfMicros: 0,
    reauthWorkMicros: 0,
    self: new Map(),
    underReauth: new Map(),
  }
  let t = profile.startTime
  profile.samples.forEach((id, i) => {
    t += profile.timeDeltas[i] ?? 0
    // A sample's time is the delta to the next one.
    const dt = profile.timeDeltas[i + 1] ?? 0
    if (t < start || t > end) return
    const node = nodes.get(id) as ProfileNode
    if (node.callFrame.functionName === '(idle)') return
    summary.samples++
    summary.cpuMicros += dt
    const key = label(node)
    summary.self.set(key, (summary.self.get(key) ?? 0) + dt)
    const owner = reauthAncestor(id)
    if (owner) {
      summary.reauthMicros += dt
      if (owner === node) summary.reauthSelfMicros += dt
      if (owner === node || !handsOff(owner)) summary.reauthWorkMicros += dt
      const k = owner === node ? key : `${key} ← ${label(owner)}`
      summary.underReauth.set(k, (summary.underReauth.get(k) ?? 0) + dt)
    }
  })
  return summary
}

function top(map: Map<string, number>, total: number, n: number): Array<[string, string]> {
  return [...map]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([k, v]) => [k, `${((v / total) * 100).toFixed(1)} %`])
}

// ------------------------------------------------------------------ orchestration

const READING = '<!-- reading: written by hand, kept when the profile is redone -->'
const READING_END = '<!-- /reading -->'

/** The hand-written reading of an earlier profile, kept at the end of a new PROFILE.md. */
function keptReading(file: URL): string {
  let old = ''
  try {
    old = readFileSync(file, 'utf8')
  } catch {
    return ''
  }
  const start = old.indexOf(READING)
  const end = old.indexOf(READING_END)
  return start >= 0 && end > start ? `\n${old.slice(start, end + READING_END.length)}\n` : ''
}

const dir = fileURLToPath(new URL('../results/profiles/', import.meta.url))

function runCell(
  name: string,
  mode: Mode,
  count: number,
): Promise<{ file: string; start: number; end: number; failures: number }> {
  const out = `${dir}${name.replace(/[^a-z0-9]+/gi, '-')}-${mode}/`
  rmSync(out, { recursive: true, force: true })
  mkdirSync(out, { recursive: true })
  const child = spawn(
    process.execPath,
    [
      '--cpu-prof',
      `--cpu-prof-dir=${out}`,
      '--cpu-prof-interval=100',
      '--conditions=source',
      '--import',
      'tsx',
      fileURLToPath(import.meta.url),
      '--cell',
      name,
      mode,
      String(count),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  )
  let text = ''
  child.stdout.on('data', (chunk: Buffer) => {
    text += chunk.toString('utf8')
  })
  return new Promise((resolve, reject) => {
    child.on('error', reject)
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`${name} ${mode}: exit ${code}`))
      const line = text.trim().split('\n').pop() ?? ''
      const { pid, start, end, failures } = JSON.parse(line) as {
        pid: number
        start: number
        end: number
        failures: number
      }
      // The server child inherits --cpu-prof too: take the client's profile by its pid.
      const file = readdirSync(out).find((f) => f.includes(`.${pid}.`))
      if (!file) return reject(new Error(`${name} ${mode}: no profile for pid ${pid}`))
      resolve({ file: out + file, start, end, failures })
    })
  })
}

async function main(): Promise<void> {
  const count = Number(option('count') ?? 5_000)
  const load = loadavg().map((n) => n.toFixed(2))
  const out: string[] = []
  out.push('# Where the overhead cells spend their time')
  out.push('')
  out.push(
    `Written by \`pnpm --filter @reauth/bench profile\` (bench/src/profile.ts) on ${new Date().toISOString().slice(0, 16)}Z, ` +
      `${cpus().length} CPUs, load average ${load.join(' / ')} at start, Node ${process.version}. Each cell ` +
      `(${count} \`GET /api\` with a valid token after 2 000 warm-up requests) ran in its own ` +
      '`node --cpu-prof --cpu-prof-interval=100` process against the forked loopback server; only ' +
      "the samples taken while the measured requests ran count. _CPU per request_: the client process's " +
      'non-idle samples (JavaScript, native, GC) over the requests. _Under reauth_: samples with a ' +
      "reauth frame (packages/*/src) anywhere on the stack, i.e. reauth's code and what it calls. " +
      "_reauth's own work_: the same without what lies under the frames where reauth hands the " +
      "call to the client (axios's wrapped methods, ky's proxy and `fetch` wrapper, @reauth/fetch's " +
      "send): reauth's functions and what they call (setting headers, the engine), not the request " +
      'the bare client makes too. ' +
      "Percentages are of the cell's non-idle samples. Code is loaded through tsx from the sources, " +
      'so names are the source functions (line numbers would be of the transpiled code). A reading ' +
      '(what belongs to reauth, what to change) is at the end.',
  )
  out.push('')
  const rows: string[][] = []
  const details: string[] = []
  for (const mode of ['sequential', 'concurrent'] as const) {
    for (const [bare, reauth] of CELLS) {
      const figures: Array<{ variant: Variant; summary: Summary; ms: number; failures: number }> =
        []
      for (const variant of [bare, reauth]) {
        console.error(`profiling ${variant.name} ${mode}…`)
        const run = await runCell(variant.name, mode, count)
        const profile = JSON.parse(readFileSync(run.file, 'utf8')) as CpuProfile
        figures.push({
          variant,
          summary: summarise(profile, run.start, run.end),
          ms: (run.end - run.start) / 1000,
          failures: run.failures,
        })
      }
      const [b, r] = figures as [(typeof figures)[0], (typeof figures)[0]]
      const perRequest = (s: Summary) => s.cpuMicros / count
      const modeName = mode === 'sequential' ? 'sequential' : `concurrency ${CONCURRENCY}`
      rows.push([
        `${reauth.client} ${modeName}`,
        `${perRequest(b.summary).toFixed(0)} µs`,
        `${perRequest(r.summary).toFixed(0)} µs`,
        `${(perRequest(r.summary) - perRequest(b.summary)).toFixed(0)} µs (${((perRequest(r.summary) / perRequest(b.summary) - 1) * 100).toFixed(0)} %)`,
        `${(r.summary.reauthMicros / count).toFixed(0)} µs (${((r.summary.reauthMicros / r.summary.cpuMicros) * 100).toFixed(1)} %)`,
        `${((r.summary.reauthSelfMicros / r.summary.cpuMicros) * 100).toFixed(1)} %`,
        `${(r.summary.reauthWorkMicros / count).toFixed(1)} µs (${((r.summary.reauthWorkMicros / r.summary.cpuMicros) * 100).toFixed(1)} %)`,
        `${(r.ms / b.ms).toFixed(2)}`,
        String(b.failures + r.failures),
      ])
      details.push(`### ${reauth.name}, ${modeName}`)
      details.push('')
      details.push(
        `${r.summary.samples} samples in the window (${b.summary.samples} for the bare client). Top self time ` +
          'with a reauth frame on the stack (leaf ← the nearest reauth frame above it):',
      )
      details.push('')
      details.push('| function, file ← nearest reauth frame | % of samples |')
      details.push('|---|---|')
      for (const [k, pct] of top(r.summary.underReauth, r.summary.cpuMicros, 12)) {
        details.push(`| ${k} | ${pct} |`)
      }
      details.push('')
      details.push('Top self time overall, reauth client | bare client:')
      details.push('')
      details.push('| reauth client: function file | % | bare client: function file | % |')
      details.push('|---|---|---|---|')
      const tr = top(r.summary.self, r.summary.cpuMicros, 10)
      const tb = top(b.summary.self, b.summary.cpuMicros, 10)
      for (let i = 0; i < Math.max(tr.length, tb.length); i++) {
        details.push(
          `| ${tr[i]?.[0] ?? ''} | ${tr[i]?.[1] ?? ''} | ${tb[i]?.[0] ?? ''} | ${tb[i]?.[1] ?? ''} |`,
        )
      }
      details.push('')
    }
  }
  out.push(
    [
      '| cell | bare CPU per request | reauth CPU per request | difference | under reauth per request | reauth self | reauth’s own work per request | wall time ratio (this run) | failures |',
      '|---|---|---|---|---|---|---|---|---|',
      ...rows.map((row) => `| ${row.join(' | ')} |`),
    ].join('\n'),
  )
  out.push('')
  out.push(...details)
  const file = new URL('../PROFILE.md', import.meta.url)
  const markdown = `${out.join('\n')}\n${keptReading(file)}`
  if (process.argv.includes('--print')) process.stdout.write(markdown)
  else {
    writeFileSync(file, markdown)
    console.error('wrote bench/PROFILE.md')
  }
}

const at = process.argv.indexOf('--cell')
if (at >= 0) {
  const [name, mode, count] = process.argv.slice(at + 1)
  await cell(name as string, mode as Mode, Number(count))
} else {
  await main()
}
