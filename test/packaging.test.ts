/**
 * Every package builds ESM + CJS with types, and passes `publint --strict` and `attw --pack`.
 */
import { execFile } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { beforeAll, describe, expect, it } from 'vitest'

const run = promisify(execFile)
const root = fileURLToPath(new URL('..', import.meta.url))
const bin = (name: string) => join(root, 'node_modules', '.bin', name)
const packages = readdirSync(join(root, 'packages')).map((name) => join(root, 'packages', name))

beforeAll(async () => {
  await run('pnpm', ['-r', '--filter', './packages/*', 'build'], { cwd: root })
}, 300_000)

describe.each(packages)('package %s', (dir) => {
  const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))

  it('declares ESM and CJS entry points with types, and no side effects', () => {
    expect(manifest.sideEffects).toBe(false)
    expect(manifest.exports['.'].import.types).toMatch(/\.d\.ts$/)
    expect(manifest.exports['.'].require.types).toMatch(/\.d\.cts$/)
    expect(manifest.exports['./package.json']).toBe('./package.json')
  })

  it('passes publint --strict', async () => {
    const { stdout } = await run(bin('publint'), ['--strict'], { cwd: dir })
    expect(stdout).toContain('All good')
  }, 120_000)

  it('passes attw --pack', async () => {
    const result = await run(bin('attw'), ['--pack', '.', '--format', 'json'], { cwd: dir }).catch(
      (error: { stdout?: string }) => ({ stdout: error.stdout ?? '' }),
    )
    const report = JSON.parse(result.stdout)
    const problems = report.analysis?.problems ?? report.problems ?? []
    expect(Array.isArray(problems) ? problems : Object.values(problems)).toEqual([])
  }, 120_000)

  it('loads from its built ESM and CJS files', async () => {
    const esm = await run(
      'node',
      [
        '--input-type=module',
        '-e',
        `import * as m from '${manifest.name}'; console.log(Object.keys(m).length)`,
      ],
      { cwd: dir },
    )
    const cjs = await run(
      'node',
      ['-e', `console.log(Object.keys(require('${manifest.name}')).length)`],
      { cwd: dir },
    )
    expect(Number(esm.stdout)).toBeGreaterThan(0)
    expect(Number(cjs.stdout)).toBe(Number(esm.stdout))
  }, 60_000)
})
