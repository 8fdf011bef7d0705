/**
 * The runtime matrix: the same scenario bundle (test/runtimes/scenarios.ts) through every
 * adapter on this Node, Node 22 and 24 (from the npm registry), Bun and Deno (the npm packages'
 * binaries), and @reauth/fetch + core inside workerd through miniflare (no nodejs_compat),
 * all against a real HTTP server on 127.0.0.1.
 */
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { builtinModules, createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { build, type Plugin } from 'esbuild'
import { Miniflare } from 'miniflare'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type LoopbackServer, startLoopbackServer } from '../support/loopback-server.js'
import { RESULT_PREFIX, type RuntimeResults, type ScenarioResult, STORM } from './scenarios.js'

const run = promisify(execFile)
const here = (path: string) => fileURLToPath(new URL(path, import.meta.url))
const bin = (name: string) => here(`../node_modules/.bin/${name}`)

/** Deno resolves Node builtins only with the `node:` prefix; axios's dependencies omit it. */
const nodePrefix: Plugin = {
  name: 'node-prefix',
  setup(b) {
    const builtins = new Set(builtinModules)
    b.onResolve({ filter: /^[a-z_]+(\/[a-z_]+)?$/ }, (args) =>
      builtins.has(args.path) ? { path: `node:${args.path}`, external: true } : undefined,
    )
  },
}

let dir: string
let server: LoopbackServer

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'reauth-runtimes-'))
  const common = {
    bundle: true,
    format: 'esm' as const,
    target: 'es2022',
    logLevel: 'silent' as const,
  }
  await Promise.all([
    build({
      ...common,
      entryPoints: [here('./main.ts')],
      outfile: join(dir, 'main.mjs'),
      platform: 'node',
      conditions: ['source'],
      plugins: [nodePrefix],
      // CommonJS dependencies (axios's http stack) call require() inside the ES module.
      banner: {
        js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);",
      },
    }),
    build({
      ...common,
      entryPoints: [here('./worker.ts')],
      outfile: join(dir, 'worker.mjs'),
      platform: 'browser',
      conditions: ['source', 'workerd', 'worker', 'browser'],
    }),
  ])
  server = await startLoopbackServer()
}, 60_000)

afterAll(async () => {
  await server?.close()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

function parse(stdout: string): { results: RuntimeResults; version: string } {
  const line = stdout.split('\n').find((l) => l.startsWith(RESULT_PREFIX))
  if (!line) throw new Error(`no results in the output:\n${stdout.slice(0, 2000)}`)
  return JSON.parse(line.slice(RESULT_PREFIX.length)) as {
    results: RuntimeResults
    version: string
  }
}

async function runScript(
  command: string,
  args: string[],
  runtime: string,
): Promise<{ results: RuntimeResults; version: string }> {
  const main = join(dir, 'main.mjs')
  const options = { cwd: dir, timeout: 90_000, env: { ...process.env, NO_COLOR: '1' } }
  const { stdout } = await run(command, [...args, main, server.origin, runtime], options)
  return parse(stdout)
}

const ALL = ['fetch', 'axios (http adapter)', 'axios (fetch adapter)', 'ky 1', 'ky 2']

interface Runtime {
  name: string
  /** What the runtime reports about itself: proves the script ran where it says. */
  version: RegExp
  harnesses: string[]
  run(): Promise<{ results: RuntimeResults; version: string }>
}

const npxNode = (major: number) => ['-y', '-p', `node@${major}`, 'node']

const runtimes: Runtime[] = [
  {
    name: `node ${process.versions.node.split('.')[0]}`,
    version: new RegExp(`^node ${process.versions.node}$`),
    harnesses: ALL,
    run: () => runScript(process.execPath, [], 'node-current'),
  },
  {
    name: 'node 22',
    version: /^node 22\./,
    harnesses: ALL,
    run: () => runScript('npx', npxNode(22), 'node22'),
  },
  {
    name: 'node 24',
    version: /^node 24\./,
    harnesses: ALL,
    run: () => runScript('npx', npxNode(24), 'node24'),
  },
  {
    name: 'bun',
    version: /^bun 1\./,
    harnesses: ALL,
    run: () => runScript(bin('bun'), ['run'], 'bun'),
  },
  {
    name: 'deno',
    version: /^deno 2\./,
    harnesses: ALL,
    // The script needs the loopback server and nothing else; axios's dependencies read env vars.
    run: () => runScript(bin('deno'), ['run', '--allow-net=127.0.0.1', '--allow-env'], 'deno'),
  },
  {
    name: 'workerd (miniflare)',
    version: /^workerd 1\.\d{8}\./,
    harnesses: ['fetch'],
    async run() {
      const mf = new Miniflare({
        modules: true,
        script: readFileSync(join(dir, 'worker.mjs'), 'utf8'),
        compatibilityDate: '2025-01-01',
      })
      try {
        const response = await mf.dispatchFetch(
          `http://worker.test/?base=${encodeURIComponent(server.origin)}`,
        )
        const text = await response.text()
        expect(response.status, text.slice(0, 500)).toBe(200)
        const fromMiniflare = createRequire(createRequire(import.meta.url).resolve('miniflare'))
        const workerd = fromMiniflare('workerd/package.json') as { version: string }
        return {
          results: JSON.parse(text) as RuntimeResults,
          version: `workerd ${workerd.version}`,
        }
      } finally {
        await mf.dispose()
      }
    },
  },
]

type Check = (r: ScenarioResult) => void

const checks: Record<string, Check> = {
  storm(r) {
    expect(r.statuses).toEqual(Array.from({ length: STORM }, () => 200))
    expect(r.errors).toEqual([])
    expect(r.server.unauthorized).toBe(STORM)
    expect(r.server.tokenRequests).toBe(1)
    expect(r.engine.grants).toBe(1)
    // Every other caller got the one grant's tokens without a grant of its own: it joined the
    // grant in flight, retried with its result, or (having read the store just before the grant
    // wrote it, as happens on Deno's scheduling) adopted it inside the lock.
    expect(r.engine.joins + r.engine.staleRetries + r.engine.adopted).toBe(STORM - 1)
    expect(r.engine.replays).toBe(STORM)
    // one `refresh` event for the grant, and one (adopted: true) per caller that adopted it
    expect(r.events).toEqual({ refresh: 1 + r.engine.adopted })
  },
  late(r) {
    // The 401 arrived after the manual refresh: retried with the new token, no second grant.
    expect(r.statuses).toEqual([200])
    expect(r.server.unauthorized).toBe(1)
    expect(r.server.tokenRequests).toBe(1)
    expect(r.engine.grants).toBe(1)
    expect(r.engine.staleRetries).toBe(1)
  },
  terminal(r) {
    expect(r.statuses).toEqual([])
    expect(r.errors).toHaveLength(6)
    expect(r.errors.every((e) => e.sessionExpired && e.name === 'SessionExpiredError')).toBe(true)
    expect(r.events).toEqual({ sessionExpired: 1 })
    // The sixth request failed fast: it reached neither the API nor the token endpoint.
    expect(r.server.unauthorized).toBe(5)
    expect(r.server.tokenRequests).toBe(1)
    expect(r.engine.sessionsExpired).toBe(1)
  },
  abort(r) {
    expect(r.errors).toHaveLength(1)
    expect(r.errors[0]?.abort).toBe(true)
    expect(r.statuses).toEqual([200, 200, 200, 200])
    expect(r.server.tokenRequests).toBe(1)
    expect(r.engine.grants).toBe(1)
  },
  'body-json'(r) {
    expect(r.statuses).toEqual([200])
    const [first, replay] = r.server.echoes
    expect(r.server.echoes).toHaveLength(2)
    expect(first?.bytes.length).toBeGreaterThan(0)
    expect(replay?.bytes).toBe(first?.bytes)
    expect(replay?.contentType).toBe(first?.contentType)
    expect(replay?.contentType).toMatch(/^application\/json/)
    expect(r.engine.grants).toBe(1)
  },
  'body-form'(r) {
    expect(r.statuses).toEqual([200])
    const [first, replay] = r.server.echoes
    expect(r.server.echoes).toHaveLength(2)
    expect(replay?.bytes).toBe(first?.bytes)
    expect(replay?.contentType).toMatch(/^application\/x-www-form-urlencoded/)
    expect(r.engine.grants).toBe(1)
  },
}

describe.each(runtimes)('$name', (runtime) => {
  let outcome: { results: RuntimeResults; version: string }

  beforeAll(async () => {
    outcome = await runtime.run()
    console.log(`${runtime.name}: ${outcome.version}`)
  }, 120_000)

  it('ran every scenario through every adapter that runs there', () => {
    expect(outcome.version).toMatch(runtime.version)
    expect(Object.keys(outcome.results)).toEqual(runtime.harnesses)
    for (const byScenario of Object.values(outcome.results)) {
      expect(Object.keys(byScenario)).toEqual(Object.keys(checks))
    }
  })

  describe.each(runtime.harnesses)('%s', (harness) => {
    it.each(Object.keys(checks))('%s', (scenario) => {
      const result = outcome.results[harness]?.[scenario]
      expect(result).toBeDefined()
      if (result && 'failed' in result) expect.fail(result.failed)
      checks[scenario]?.(result as ScenarioResult)
    })
  })
})
