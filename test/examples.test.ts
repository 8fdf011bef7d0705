/**
 * The examples run and say what they did; the browser example builds.
 */
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'

const run = promisify(execFile)
const root = fileURLToPath(new URL('..', import.meta.url))

describe('examples', () => {
  it.each([
    '@reauth/example-fetch',
    '@reauth/example-axios-node',
    '@reauth/example-ky-node',
    // a Cloudflare Worker in workerd (miniflare), and a Deno script
    '@reauth/example-worker',
    '@reauth/example-deno',
  ])(
    '%s runs against the embedded OpenID Provider and every request succeeds',
    async (name) => {
      const { stdout } = await run('pnpm', ['--filter', name, 'start'], { cwd: root })
      expect(stdout).toContain('burst 3: 50/50 ok')
      expect(stdout).toMatch(/grants\s*│\s*[1-9]/)
    },
    90_000,
  )

  it('pnpm demo exits 0 with its table: nothing failed, no grant revoked', async () => {
    const { stdout } = await run('pnpm', ['demo'], { cwd: root })
    expect(stdout).toContain(
      'grants revoked by the provider (a reused refresh token would do that): 0',
    )
    expect(stdout).toMatch(/p99 ms/)
    // The control phase is printed beside the two others, with the ratio.
    expect(stdout).toMatch(/0 control/)
    expect(stdout).toMatch(/expiry known vs control: p50 ×[\d.]+, p99 ×[\d.]+/)
  }, 110_000)

  it('ky-browser builds with Vite', async () => {
    await run('pnpm', ['--filter', '@reauth/example-ky-browser', 'build'], { cwd: root })
    expect(existsSync(`${root}/examples/ky-browser/dist/index.html`)).toBe(true)
  }, 90_000)
})
