/**
 * examples/ky-browser end to end in Chromium: built with Vite (into a temporary folder, so a
 * concurrent `examples.test.ts` build of dist/ is not disturbed), served over loopback; MSW's
 * service worker plays the authorization server and the API.
 */
import { execFile } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { launchChromium } from './chromium.js'
import { serveStatic } from './server.js'

const root = fileURLToPath(new URL('../..', import.meta.url))
let browser: Browser | undefined
let site: { origin: string; close(): Promise<void> } | undefined
let outDir: string | undefined

beforeAll(async () => {
  outDir = await mkdtemp(join(tmpdir(), 'reauth-ky-browser-'))
  const building = promisify(execFile)(
    'pnpm',
    [
      '--filter',
      '@reauth/example-ky-browser',
      'exec',
      'vite',
      'build',
      '--outDir',
      outDir,
      '--emptyOutDir',
      '--logLevel',
      'error',
    ],
    { cwd: root, timeout: 40_000 },
  )
  ;[browser] = await Promise.all([launchChromium(), building])
  site = await serveStatic(outDir)
}, 45_000)

afterAll(async () => {
  await browser?.close()
  await site?.close()
  if (outDir) await rm(outDir, { recursive: true, force: true })
}, 10_000)

it('the ky-browser page: one refresh for 20 concurrent 401s, every request ok', async () => {
  const page = await browser!.newPage()
  page.setDefaultTimeout(10_000)
  const errors: string[] = []
  page.on('pageerror', (error) => errors.push(error.message))
  await page.goto(site!.origin)
  const result = page.locator('#result')
  await expect.poll(() => result.textContent(), { timeout: 10_000 }).toBe('Ready.')
  await page.locator('#burst').click()
  await expect
    .poll(() => result.textContent(), { timeout: 10_000 })
    .toMatch(/^20\/20 ok · grants 1 · /)
  expect(await result.textContent()).toMatch(/replays [1-9]/)
  expect(errors).toEqual([])
  if (process.env.REAUTH_SCREENSHOT) {
    // Refreshes the committed screenshot: REAUTH_SCREENSHOT=1 npx vitest run --project services test/browser
    await page.screenshot({
      path: join(root, 'examples/ky-browser/screenshot.png'),
      clip: { x: 0, y: 0, width: 1080, height: 190 },
    })
  }
}, 25_000)
