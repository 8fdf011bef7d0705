#!/usr/bin/env node
// The README's test command: lint, typecheck, then every vitest project (unit, type tests,
// contract suite, e2e, services, interop against independent authorization servers,
// packaging with a publish dry run, the release plan, examples, the README code blocks, the
// runtime matrix (Node 22/24, Bun, Deno, workerd) and the bench charts in Chromium) on this
// Node, and the library projects once
// more on Node 24 (from the npm registry). The last line is the plain count, summed from
// vitest's JSON reports.
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync, rmSync } from 'node:fs'

const failures = []
const reports = []

function step(name, command, args) {
  console.log(`\n▶ ${name}: ${command} ${args.join(' ')}`)
  const { status } = spawnSync(command, args, { stdio: 'inherit' })
  if (status !== 0) failures.push(name)
}

function vitest(name, node, report, projects = []) {
  rmSync(report, { force: true })
  reports.push(report)
  const args = [
    'node_modules/vitest/vitest.mjs',
    'run',
    '--reporter=default',
    '--reporter=json',
    `--outputFile=${report}`,
    ...projects.flatMap((project) => ['--project', project]),
  ]
  if (node === 'current') step(name, process.execPath, args)
  else step(name, 'npx', ['-y', '-p', `node@${node}`, 'node', ...args])
}

// `pnpm test --quick` skips the Node 24 run while developing.
const quick = process.argv.includes('--quick')
step('lint', 'pnpm', ['exec', 'biome', 'check', '.'])
step('typecheck', 'pnpm', ['exec', 'tsc', '-p', 'tsconfig.json', '--noEmit'])
vitest(`vitest (Node ${process.versions.node})`, 'current', '.vitest-results.json')
if (!quick) {
  const libraries = [
    'core',
    'fetch',
    'axios',
    'ky',
    'oauth',
    'msw',
    // @reauth/msw on msw 3, which needs Node >= 22.12 (the project exists only there)
    'msw3',
    'redis',
    'browser',
    'otel',
    'contract',
    'faults',
    'model',
    'security',
    'e2e',
  ]
  vitest('vitest (Node 24)', '24', '.vitest-results-node24.json', libraries)
}

let passed = 0
let failed = 0
for (const file of reports) {
  if (!existsSync(file)) {
    failures.push(`${file} missing`)
    continue
  }
  const report = JSON.parse(readFileSync(file, 'utf8'))
  passed += report.numPassedTests
  failed += report.numFailedTests
  // A file that fails outside its tests (import error, failing beforeAll) has no failed
  // test in the counts: count the file itself as a failure.
  for (const result of report.testResults ?? []) {
    const failedTests = (result.assertionResults ?? []).filter((t) => t.status === 'failed')
    if (result.status === 'failed' && failedTests.length === 0) failed++
  }
}
if (failures.length > 0) console.log(`\nFailed steps: ${failures.join(', ')}`)
console.log(`${passed} passed, ${failed} failed`)
process.exit(failures.length > 0 || failed > 0 || passed === 0 ? 1 : 0)
