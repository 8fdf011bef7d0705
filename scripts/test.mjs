#!/usr/bin/env node
// The README's test command: lint, typecheck, then every vitest project (unit, type tests,
// contract suite, packaging checks). The last line is the plain count from vitest's JSON report.
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync, rmSync } from 'node:fs'

const results = '.vitest-results.json'
const failures = []

function step(name, command, args) {
  console.log(`\n▶ ${name}: ${command} ${args.join(' ')}`)
  const { status } = spawnSync(command, args, { stdio: 'inherit' })
  if (status !== 0) failures.push(name)
}

rmSync(results, { force: true })
step('lint', 'pnpm', ['exec', 'biome', 'check', '.'])
step('typecheck', 'pnpm', ['exec', 'tsc', '-p', 'tsconfig.json', '--noEmit'])
step('vitest', 'pnpm', [
  'exec',
  'vitest',
  'run',
  '--reporter=default',
  '--reporter=json',
  `--outputFile=${results}`,
  ...process.argv.slice(2),
])

let passed = 0
let failed = 0
if (existsSync(results)) {
  const report = JSON.parse(readFileSync(results, 'utf8'))
  passed = report.numPassedTests
  failed = report.numFailedTests
  // A file that fails outside its tests (import error, failing beforeAll) has no failed
  // test in the counts: count the file itself as a failure.
  for (const file of report.testResults ?? []) {
    const failedTests = (file.assertionResults ?? []).filter((t) => t.status === 'failed')
    if (file.status === 'failed' && failedTests.length === 0) failed++
  }
} else {
  failures.push('vitest report missing')
}
if (failures.length > 0) console.log(`\nFailed steps: ${failures.join(', ')}`)
console.log(`${passed} passed, ${failed} failed`)
process.exit(failures.length > 0 || failed > 0 || passed === 0 ? 1 : 0)
