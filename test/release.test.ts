/**
 * The release plan: the pending changesets, applied by `changeset version` to a scratch copy
 * of the workspace's manifests, release every package in packages/* at its first public
 * version with a CHANGELOG entry, and nothing private. (The publish dry run of each package
 * is in packaging.test.ts, after its build.)
 */
import { execFile } from 'node:child_process'
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const run = promisify(execFile)
const root = fileURLToPath(new URL('..', import.meta.url))
const packages = readdirSync(join(root, 'packages'))
const manifest = (dir: string, name: string) =>
  JSON.parse(readFileSync(join(dir, name, 'package.json'), 'utf8')) as {
    name: string
    version: string
    private?: boolean
    publishConfig?: { access?: string }
    dependencies?: Record<string, string>
  }

let scratch: string

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'reauth-release-'))
  const copy = (path: string) => {
    if (!existsSync(join(root, path))) return
    mkdirSync(dirname(join(scratch, path)), { recursive: true })
    cpSync(join(root, path), join(scratch, path), { recursive: true })
  }
  for (const file of ['package.json', 'pnpm-workspace.yaml', '.changeset']) copy(file)
  for (const name of packages) {
    copy(`packages/${name}/package.json`)
    copy(`packages/${name}/CHANGELOG.md`)
  }
  for (const dir of ['test', 'testbed', 'demo', 'bench']) copy(`${dir}/package.json`)
  for (const name of readdirSync(join(root, 'examples'))) copy(`examples/${name}/package.json`)
  await run(process.execPath, [join(root, 'node_modules/@changesets/cli/bin.js'), 'version'], {
    cwd: scratch,
    env: { ...process.env, CI: '1' },
  })
}, 60_000)

afterAll(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true })
})

describe('release plan (changesets)', () => {
  it('the config publishes with public access and leaves private workspace packages alone', () => {
    const config = JSON.parse(readFileSync(join(root, '.changeset/config.json'), 'utf8'))
    expect(config.access).toBe('public')
    expect(config.privatePackages).toEqual({ version: false, tag: false })
    expect(manifest(scratch, 'test').version).toBe(manifest(root, 'test').version)
  })

  it.each(packages)(
    'packages/%s: unreleased in the repo, 0.1.0 with a CHANGELOG entry after `changeset version`',
    (name) => {
      const before = manifest(join(root, 'packages'), name)
      const after = manifest(join(scratch, 'packages'), name)
      expect(before.private).toBeUndefined()
      expect(before.publishConfig?.access).toBe('public')
      expect(before.version).toBe('0.0.0')
      expect(after.version).toBe('0.1.0')
      const changelog = readFileSync(join(scratch, 'packages', name, 'CHANGELOG.md'), 'utf8')
      expect(changelog.startsWith(`# ${before.name}\n`)).toBe(true)
      expect(changelog).toMatch(
        /## 0\.1\.0\n\n### Minor Changes\n\n- [0-9a-f]*:? ?First public release\./,
      )
      // internal dependencies stay on the workspace protocol; pnpm publish writes the version
      for (const [dep, range] of Object.entries(after.dependencies ?? {})) {
        if (dep.startsWith('@reauth/')) expect(range).toBe('workspace:^')
      }
    },
  )
})
