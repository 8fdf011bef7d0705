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

  it('@reauth/example-service: four cluster workers on a real redis-server, one client credentials token request per expiry', {
    timeout: 120_000,
    retry: 1,
  }, async () => {
    // redis-server from the PATH (bash .ci/run installs Debian's), as test/redis does
    // 8 s tokens: a 2 s expiry margin, which a loaded machine's transit does not outlast (with
    // 4 s tokens a send just inside the margin sometimes met a 401: served after a refresh,
    // but one token request more than one per expiry)
    const { stdout, stderr } = await run('pnpm', ['--filter', '@reauth/example-service', 'start'], {
      cwd: root,
      env: { ...process.env, REAUTH_TOKEN_TTL: '8' },
    }).catch((error: { stdout?: string; stderr?: string }) => ({
      stdout: error.stdout ?? '',
      stderr: `exited non-zero\n${error.stderr ?? ''}`,
    }))
    const output = `${stdout}\n${stderr}` // in the failure message: what the service printed
    for (let burst = 1; burst <= 3; burst++) {
      expect(stdout, output).toContain(`burst ${burst}: 50/50 ok`)
    }
    expect(stdout, output).toContain('token requests: 3 for 3 token lifetimes across 4 workers')
    expect(stdout, output).toContain('api: 150 ok, 0 unauthorized')
    expect(stderr, output).not.toContain('exited non-zero')
    // Once in one CI run the service's primary was ended by a SIGTERM from outside it, 14 s in,
    // between bursts 1 and 2, while other suites ran beside it (not reproduced alone or under
    // load): one more run, whole and with the same assertions, before the test fails.
  })

  it('pnpm demo exits 0 with its table: nothing failed, no grant revoked', async () => {
    const { stdout } = await run('pnpm', ['demo'], { cwd: root })
    expect(stdout).toContain(
      'grants revoked by the provider (a reused refresh token would do that): 0',
    )
    expect(stdout).toMatch(/p99 ms/)
    // The control phase is printed beside the three others, with the ratio.
    expect(stdout).toMatch(/0 control/)
    expect(stdout).toMatch(/expiry known vs control: p50 ×[\d.]+, p99 ×[\d.]+/)
    // The DPoP phase (nonces required, every proof verified by the API) and its ratio.
    expect(stdout).toMatch(/3 DPoP/)
    expect(stdout).toMatch(/DPoP vs expiry known \(Bearer\): p50 ×[\d.]+, p99 ×[\d.]+/)
  }, 110_000)

  it('ky-browser builds with Vite', async () => {
    await run('pnpm', ['--filter', '@reauth/example-ky-browser', 'build'], { cwd: root })
    expect(existsSync(`${root}/examples/ky-browser/dist/index.html`)).toBe(true)
  }, 90_000)
})
