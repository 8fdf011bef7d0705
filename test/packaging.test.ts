/**
 * Every package builds ESM + CJS with types, and passes `publint --strict` and `attw --pack`.
 */
import { execFile } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
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

  it('publishes: `pnpm publish --dry-run` passes, and the tarball has the build, public access and no workspace: ranges', async () => {
    await run('pnpm', ['publish', '--dry-run', '--no-git-checks'], { cwd: dir })
    const destination = mkdtempSync(join(tmpdir(), 'reauth-pack-'))
    try {
      const { stdout } = await run('pnpm', ['pack', '--json', '--pack-destination', destination], {
        cwd: dir,
      })
      const packed = JSON.parse(stdout) as { filename: string; files: Array<{ path: string }> }
      const files = packed.files.map((f) => f.path)
      expect(files).toEqual(
        expect.arrayContaining([
          'dist/index.js',
          'dist/index.cjs',
          'dist/index.d.ts',
          'dist/index.d.cts',
          'README.md',
          'CHANGELOG.md',
        ]),
      )
      expect(files.filter((f) => /\.test(-d)?\.ts$/.test(f))).toEqual([])
      const { stdout: json } = await run(
        'tar',
        ['-xzOf', packed.filename, 'package/package.json'],
        { cwd: destination },
      )
      const published = JSON.parse(json)
      expect(published.publishConfig).toEqual({ access: 'public' })
      const ranges = { ...published.dependencies, ...published.peerDependencies }
      expect(
        Object.values(ranges).filter((range) => String(range).startsWith('workspace:')),
      ).toEqual([])
      if (published.dependencies?.['@reauth/core']) {
        expect(published.dependencies['@reauth/core']).toBe(`^${manifest.version}`)
      }
    } finally {
      rmSync(destination, { recursive: true, force: true })
    }
  }, 60_000)
})

describe('@reauth/core, built', () => {
  const core = join(root, 'packages', 'core')

  it('an engine made from the CJS and the ESM build replays through its queue (p-queue bundled)', async () => {
    const script = (load: string) => `${load}
const engine = m.createEngine({
  tokens: { accessToken: 'a0', tokenType: 'Bearer', refreshToken: 'r0' },
  refresh: async () => ({ accessToken: 'a1', tokenType: 'Bearer' }),
  origins: ['https://api.test'],
})
const reauth = a.connect(engine, { baseHint: 'x' })
a.run(reauth, {
  url: 'https://api.test/x',
  send: async (sent) => (sent?.headers.authorization === 'Bearer a1' ? 200 : 401),
  response: (status) => ({ status, headers: { get: () => null } }),
}).then((status) => console.log(status, engine.stats().replays))`
    const cjs = await run(
      'node',
      [
        '-e',
        script("const m = require('@reauth/core'); const a = require('@reauth/core/adapter')"),
      ],
      { cwd: core },
    )
    const esm = await run(
      'node',
      [
        '--input-type=module',
        '-e',
        script("import * as m from '@reauth/core'; import * as a from '@reauth/core/adapter'"),
      ],
      { cwd: core },
    )
    expect(cjs.stdout.trim()).toBe('200 1')
    expect(esm.stdout.trim()).toBe('200 1')
  }, 60_000)
})
