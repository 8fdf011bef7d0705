/**
 * Every TypeScript/JavaScript block of every README compiles and runs, so the docs cannot
 * drift from the API. Each README becomes one module (blocks in order, see module.ts) with a
 * prelude that supplies what its snippets assume (setups.ts); the modules are typechecked
 * together with the TypeScript API under the repository's compiler options, and each one runs
 * in its own Node process (tsx, the `source` condition) against @reauth/msw handlers (and a
 * redis-server this test starts, for the Redis README), or under vitest when the README shows a
 * test file. A block marked `<!-- readme-test: typecheck-only -->` is compiled but not run (see
 * markdown.ts).
 */
import { execFile } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import ts from 'typescript'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { launchChromium } from '../browser/chromium.js'
import { startTokenServer } from '../browser/server.js'
import { type RunningRedis, startRedis } from '../redis/support/redis-server.js'
import { type CodeBlock, extractBlocks } from './markdown.js'
import { blockSources, buildModule, type GeneratedModule } from './module.js'
import { aliases, DONE_MARKER, RESULT_MARKER, type ReadmeSetup, setupFor } from './setups.js'

const root = fileURLToPath(new URL('../..', import.meta.url))
/** Inside the workspace, so `@reauth/*`, axios, ky2 and msw resolve as for the tests; gitignored. */
const out = join(root, 'test/readmes/.generated')

/** Every README.md in the repository: the root one, the packages', the examples' … */
function findReadmes(dir = root): string[] {
  const found: string[] = []
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name.startsWith('.') || ['node_modules', 'dist', 'coverage'].includes(entry.name)) {
      continue
    }
    const path = join(dir, entry.name)
    if (entry.isDirectory()) found.push(...findReadmes(path))
    else if (entry.name === 'README.md') found.push(relative(root, path))
  }
  return found.sort()
}

interface Generated {
  readme: string
  setup: ReadmeSetup
  blocks: CodeBlock[]
  /** Every block: typechecked. */
  full: GeneratedModule & { path: string }
  /** The blocks that run, or `undefined` when every block is typecheck-only. */
  run: (GeneratedModule & { path: string }) | undefined
}

function write(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true })
  writeFileSync(path, text)
}

/** Generate a README's modules under `out/<slug>/test/`. */
function generate(readme: string, markdown: string, setup: ReadmeSetup): Generated {
  const blocks = extractBlocks(markdown, readme)
  const slug =
    readme === 'README.md' ? 'root' : readme.replace(/\/README\.md$|\.md$/, '').replace(/\W/g, '-')
  const dir = join(out, slug, 'test')
  const prelude = { code: setup.prelude, file: 'prelude', line: 1 }
  const epilogue = { code: setup.epilogue, file: 'epilogue', line: 1 }
  const build = (selected: CodeBlock[]) =>
    buildModule(prelude, blockSources(selected, readme), epilogue, aliases)
  const suffix = setup.runner === 'vitest' ? '.test.ts' : '.ts'
  const full = { ...build(blocks), path: join(dir, `typecheck${suffix}`) }
  write(full.path, full.text)
  const runnable = blocks.filter((block) => block.mode === 'run')
  let run: Generated['run']
  if (runnable.length > 0) {
    run = { ...build(runnable), path: join(dir, `run${suffix}`) }
    write(run.path, run.text)
  }
  for (const [path, text] of Object.entries(setup.files)) write(join(dir, path), text)
  return { readme, setup, blocks, full, run }
}

/** Typecheck generated modules with the repository's compiler options; messages name README lines. */
function typecheck(modules: Generated[]): Map<string, string[]> {
  const base = ts.readConfigFile(join(root, 'tsconfig.base.json'), ts.sys.readFile)
  const parsed = ts.parseJsonConfigFileContent(base.config, ts.sys, root)
  const options: ts.CompilerOptions = { ...parsed.options, types: ['node'], noEmit: true }
  const byPath = new Map(modules.map((m) => [m.full.path, m]))
  const program = ts.createProgram([...byPath.keys()], options)
  const problems = new Map<string, string[]>(modules.map((m) => [m.readme, []]))
  for (const diagnostic of ts.getPreEmitDiagnostics(program)) {
    const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n')
    const file = diagnostic.file
    const owner = file && byPath.get(file.fileName)
    if (!file || diagnostic.start === undefined) {
      // A global problem (options, lib): every README reports it.
      for (const list of problems.values()) list.push(message)
      continue
    }
    const { line } = file.getLineAndCharacterOfPosition(diagnostic.start)
    if (owner) {
      problems.get(owner.readme)?.push(`${owner.full.origins[line] ?? '?'}: ${message}`)
    } else {
      // In a fixture the setup supplies: attribute it to the README that owns the folder.
      const m = modules.find((candidate) =>
        file.fileName.startsWith(dirname(dirname(candidate.full.path))),
      )
      const where = `${relative(root, file.fileName)}:${line + 1}`
      if (m) problems.get(m.readme)?.push(`${where}: ${message}`)
      else for (const list of problems.values()) list.push(`${where}: ${message}`)
    }
  }
  return problems
}

interface RunResult {
  code: number | null
  stdout: string
  stderr: string
}

/** A child's environment without the parent vitest's worker variables. */
function childEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(
    Object.entries(process.env).filter(
      ([name]) => !name.startsWith('VITEST') && name !== 'NODE_OPTIONS',
    ),
  )
}

/** Children running at once: the machine is shared, and each child loads every package. */
const MAX_CHILDREN = 2
let children = 0
const waiting: Array<() => void> = []

/** Run `task` when fewer than MAX_CHILDREN runs (processes or a browser) are going. */
async function limited<T>(task: () => Promise<T>): Promise<T> {
  if (children >= MAX_CHILDREN) await new Promise<void>((resolve) => waiting.push(resolve))
  children++
  try {
    return await task()
  } finally {
    children--
    waiting.shift()?.()
  }
}

function spawnRun(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<RunResult> {
  return limited(() => spawnOne(command, args, env))
}

function spawnOne(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      {
        cwd: root,
        env: { ...childEnv(), ...env },
        timeout: 120_000,
        killSignal: 'SIGKILL',
        maxBuffer: 16 << 20,
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : null) : 0
        resolve({ code, stdout, stderr: error?.killed ? `${stderr}\n(killed: timed out)` : stderr })
      },
    )
  })
}

/**
 * Run a browser README's module in a page of headless Chromium, served by the loopback token
 * server of the browser tests; stdout gets the page's console and, once the page logged its
 * done line, the server's counters.
 */
async function runInBrowser(path: string): Promise<RunResult> {
  const bundle = await build({
    entryPoints: [path],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    conditions: ['source'],
    write: false,
    logLevel: 'silent',
  })
  const html = '<!doctype html><meta charset="utf-8"><script type="module" src="/tab.js"></script>'
  const server = await startTokenServer({ html, script: bundle.outputFiles[0]?.text ?? '' })
  const browser = await launchChromium()
  const lines: string[] = []
  try {
    const page = await browser.newPage()
    const session = server.signIn()
    server.expireAll()
    await page.addInitScript((tokens) => {
      ;(globalThis as unknown as { readmeSession: unknown }).readmeSession = tokens
    }, session)
    const outcome = new Promise<string | undefined>((resolve) => {
      page.on('pageerror', (error) => resolve(error.stack ?? error.message))
      page.on('console', (message) => {
        lines.push(message.text())
        if (message.text() === DONE_MARKER) resolve(undefined)
      })
    })
    await page.goto(server.origin)
    const failure = await Promise.race([
      outcome,
      new Promise<string>((resolve) => setTimeout(resolve, 60_000, 'the page did not finish')),
    ])
    if (failure) return { code: 1, stdout: lines.join('\n'), stderr: failure }
    const counters = { grants: server.counts.grants, reuseDetected: server.counts.reuse }
    lines.push(`${RESULT_MARKER}${JSON.stringify(counters)}`)
    return { code: 0, stdout: lines.join('\n'), stderr: '' }
  } finally {
    await browser.close()
    await server.close()
  }
}

/** Run a generated module: as a script under tsx, as a test file under vitest, or in Chromium. */
function runModule(generated: Generated): Promise<RunResult> | undefined {
  const { run, setup } = generated
  if (!run) return undefined
  if (setup.runner === 'browser') return limited(() => runInBrowser(run.path))
  if (setup.runner === 'node') {
    const env = setup.redis ? { REDIS_URL: redisServer().url } : {}
    return spawnRun(process.execPath, ['--conditions=source', '--import', 'tsx', run.path], env)
  }
  const dir = dirname(dirname(run.path))
  const config = join(dir, 'vitest.config.mjs')
  const conditions = ['source', 'node', 'import', 'module', 'development|production', 'default']
  write(
    config,
    `export default ${JSON.stringify({
      resolve: { conditions },
      ssr: { resolve: { conditions, externalConditions: conditions } },
      test: { root: dir, include: [relative(dir, run.path)] },
    })}\n`,
  )
  return spawnRun(process.execPath, [
    join(root, 'node_modules/vitest/vitest.mjs'),
    'run',
    '--config',
    config,
    '--reporter=json',
    `--outputFile=${join(dir, 'report.json')}`,
  ])
}

const readmes = findReadmes()
const generated = new Map<string, Generated>()
const runs = new Map<string, Promise<RunResult> | undefined>()
let problems = new Map<string, string[]>()

/**
 * READMEs that drifted from the API, to show the test catches it: one whose block no longer
 * typechecks, one whose block typechecks but fails when it runs (fetch on a server without
 * `origins`).
 */
const drifted = {
  'drift/typecheck.md': [
    '# drifted',
    '',
    '```ts',
    "import { createEngine } from '@reauth/core'",
    '',
    "const engine = createEngine({ tokens, refresh, leeway: '10s' })",
    '```',
    '',
  ].join('\n'),
  'drift/run.md': [
    '# drifted',
    '',
    '```ts',
    "import { createEngine } from '@reauth/core'",
    "import { createFetch } from '@reauth/fetch'",
    '',
    'const api = createFetch(createEngine({ tokens, refresh }))',
    "await api('https://api.example.com/me')",
    '```',
    '',
  ].join('\n'),
}

let redis: RunningRedis | undefined
function redisServer(): RunningRedis {
  if (!redis) throw new Error('redis-server was not started')
  return redis
}
afterAll(() => redis?.stop())

beforeAll(async () => {
  rmSync(out, { recursive: true, force: true })
  for (const readme of readmes) {
    const markdown = readFileSync(join(root, readme), 'utf8')
    const module = generate(readme, markdown, setupFor(readme))
    generated.set(readme, module)
  }
  for (const [name, markdown] of Object.entries(drifted)) {
    generated.set(name, generate(name, markdown, setupFor(name)))
  }
  if ([...generated.values()].some((module) => module.setup.redis && module.run)) {
    redis = await startRedis()
  }
  // Start the runs first: they go on in their own processes while this one typechecks.
  for (const [readme, module] of generated) runs.set(readme, runModule(module))
  problems = typecheck([...generated.values()])
}, 180_000)

describe.each(readmes)('%s', (readme) => {
  it('its code blocks typecheck against the packages', () => {
    expect(problems.get(readme)).toEqual([])
  })

  it('its runnable blocks run to the end against the fake servers', async () => {
    const module = generated.get(readme)
    const pending = runs.get(readme)
    if (!module) throw new Error(`${readme} was not generated`)
    if (!pending) {
      // Nothing to run is stated in the README itself: no code blocks, or all of them marked.
      expect(module.blocks.every((block) => block.mode === 'typecheck-only')).toBe(true)
      return
    }
    const result = await pending
    const where = `${readme} (generated: ${relative(root, module.run?.path ?? '')})`
    expect(result.code, `${where}\n${result.stderr}\n${result.stdout}`).toBe(0)
    if (module.setup.runner === 'vitest') {
      const report = JSON.parse(
        readFileSync(join(dirname(dirname(module.run?.path ?? '')), 'report.json'), 'utf8'),
      ) as { numPassedTests: number; numFailedTests: number; numTotalTests: number }
      expect(report.numFailedTests).toBe(0)
      expect(report.numPassedTests).toBe(report.numTotalTests)
      expect(report.numPassedTests).toBeGreaterThan(0)
      return
    }
    const line = result.stdout.split('\n').find((text) => text.startsWith(RESULT_MARKER))
    expect(line, `${where} did not reach its end\n${result.stderr}`).toBeDefined()
    const counters = JSON.parse(line?.slice(RESULT_MARKER.length) ?? '{}') as { grants: number }
    expect(counters.grants).toBeGreaterThanOrEqual(module.setup.minGrants)
  }, 300_000)
})

describe('a README that drifts from the API fails the test', () => {
  it('a block that no longer typechecks is reported at its README line', () => {
    expect(problems.get('drift/typecheck.md')).toEqual([
      expect.stringMatching(
        /^drift\/typecheck\.md:6: .*'string' is not assignable to type 'number'/,
      ),
    ])
  })

  it('a block that typechecks but throws makes its run fail', async () => {
    expect(problems.get('drift/run.md')).toEqual([])
    const result = await runs.get('drift/run.md')
    expect(result?.code).not.toBe(0)
    expect(result?.stderr).toContain('"origins" is required')
    expect(result?.stdout).not.toContain(RESULT_MARKER)
  }, 300_000)
})
