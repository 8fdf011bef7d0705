/**
 * What a user sees on the registry: every package ships its README and the LICENSE, says
 * MIT, and points at no placeholder URL.
 */
import { execFile } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'

const run = promisify(execFile)
const root = fileURLToPath(new URL('../..', import.meta.url))
const packages = readdirSync(join(root, 'packages'))
const license = readFileSync(join(root, 'LICENSE'), 'utf8')

/**
 * Packages whose README is written on another branch (issue 12 §7: the oauth engineer writes
 * packages/oauth/README.md). Empty this list when it lands.
 */
const readmePending = new Set<string>([])

/** Every package.json in the workspace (see pnpm-workspace.yaml), outside node_modules. */
function manifests(): string[] {
  const found = ['package.json', 'test/package.json', 'testbed/package.json', 'demo/package.json']
  found.push('bench/package.json')
  for (const parent of ['packages', 'examples']) {
    for (const name of readdirSync(join(root, parent))) {
      if (existsSync(join(root, parent, name, 'package.json'))) {
        found.push(`${parent}/${name}/package.json`)
      }
    }
  }
  return found
}

describe('package metadata', () => {
  it.each(manifests())('%s names no placeholder URL or text', (file) => {
    const manifest = JSON.parse(readFileSync(join(root, file), 'utf8'))
    const metadata = ['repository', 'homepage', 'bugs', 'author', 'funding', 'description']
    for (const field of metadata) {
      expect(JSON.stringify(manifest[field] ?? ''), `${file} "${field}"`).not.toMatch(
        /example\.(com|org|net|invalid)|\.invalid\b|placeholder|TODO|FIXME|your-?(org|name)/i,
      )
    }
  })
})

describe.each(packages)('@reauth/%s', (name) => {
  const dir = join(root, 'packages', name)
  const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))

  it('is MIT licensed, with the repository LICENSE beside it', () => {
    expect(manifest.license).toBe('MIT')
    expect(readFileSync(join(dir, 'LICENSE'), 'utf8')).toBe(license)
    expect(manifest.files).toEqual(expect.arrayContaining(['README.md', 'LICENSE']))
  })

  it('packs its README and LICENSE', async () => {
    // The tarball's file list, as `pnpm publish` would pack it (nothing is written).
    const { stdout } = await run('pnpm', ['pack', '--dry-run', '--json'], { cwd: dir })
    const packed = (JSON.parse(stdout) as { files: Array<{ path: string }> }).files.map(
      (file) => file.path,
    )
    expect(packed).toContain('LICENSE')
    expect(packed).toContain('package.json')
    if (readmePending.has(name)) expect(packed).not.toContain('README.md')
    else expect(packed).toContain('README.md')
  }, 60_000)
})
