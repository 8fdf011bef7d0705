/**
 * reauth in a real Chromium: three tabs of one origin, each with its own engine on a
 * BroadcastChannel store and a Web Lock, fire bursts through fetch, ky and axios (xhr and
 * fetch adapters) after the server expired every access token.
 */
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { launchChromium } from './chromium.js'
import type { BurstResult } from './page/tab.js'
import { startTokenServer, type TokenServer } from './server.js'

let browser: Browser
let server: TokenServer

beforeAll(async () => {
  const bundle = await build({
    entryPoints: [fileURLToPath(new URL('./page/tab.ts', import.meta.url))],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    conditions: ['source'],
    write: false,
    logLevel: 'silent',
  })
  const script = bundle.outputFiles[0]?.text ?? ''
  const html =
    '<!doctype html><meta charset="utf-8"><title>reauth tab</title><script type="module" src="/tab.js"></script>'
  ;[server, browser] = await Promise.all([startTokenServer({ html, script }), launchChromium()])
}, 30_000)

afterAll(async () => {
  await browser?.close()
  await server?.close()
}, 10_000)

async function openTabs(context: BrowserContext, count: number): Promise<Page[]> {
  const tokens = server.signIn()
  const pages: Page[] = []
  for (let i = 0; i < count; i++) {
    const page = await context.newPage()
    page.setDefaultTimeout(10_000)
    await page.goto(server.origin)
    await page.waitForFunction(() => 'reauthTab' in window)
    // The first tab signs in; the others get the tokens from it over the channel.
    const known = await page.evaluate(
      ([tab, initial]) => window.reauthTab.start(tab, initial ?? undefined),
      [`tab${i}`, i === 0 ? tokens : null] as const,
    )
    expect(known).toBe(true)
    expect(await page.evaluate(() => window.reauthTab.crossTab())).toBe(true)
    pages.push(page)
  }
  return pages
}

const burst = (page: Page, perClient: number) =>
  page.evaluate((n) => window.reauthTab.burst(n), perClient)

const grantsIn = async (pages: Page[]) => {
  let grants = 0
  for (const page of pages) grants += (await page.evaluate(() => window.reauthTab.stats())).grants
  return grants
}

describe('three tabs in Chromium', () => {
  it('expired tokens in every tab: one grant in all, every request succeeds, no reuse', async () => {
    const context = await browser.newContext()
    try {
      const pages = await openTabs(context, 3)
      const before = { ...server.counts }
      server.expireAll()
      const results = await Promise.all(pages.map((page) => burst(page, 5)))
      for (const result of results) expect(result).toEqual({ ok: 20, failed: [] })
      expect(server.counts.grants - before.grants).toBe(1)
      expect(server.counts.reuse).toBe(0)
      expect(server.counts.revoked).toBe(0)
      expect(await grantsIn(pages)).toBe(1)
      // The other tabs saw 401s too and got the new token without a grant of their own.
      expect(server.counts.api401 - before.api401).toBeGreaterThan(0)
      for (const page of pages)
        expect(await page.evaluate(() => window.reauthTab.logs())).toEqual([])
    } finally {
      await context.close()
    }
  }, 20_000)

  it('a tab closed while it holds the lock: another takes over, no request in the others is lost', async () => {
    const context = await browser.newContext()
    try {
      const pages = await openTabs(context, 3)
      const before = { ...server.counts }
      const held = server.holdNext()
      server.expireAll()
      const bursts = new Map<Page, Promise<BurstResult | Error>>(
        pages.map((page) => [page, burst(page, 4).catch((error: Error) => error)]),
      )
      // The first tab to refresh holds the Web Lock while its token request is held.
      const { tab, gone } = await held
      const holder = pages[Number(tab?.replace('tab', ''))]
      expect(holder).toBeDefined()
      await holder?.close()
      await gone
      const others = pages.filter((page) => page !== holder)
      const results = await Promise.all(others.map((page) => bursts.get(page)))
      for (const result of results) expect(result).toEqual({ ok: 16, failed: [] })
      expect(server.counts.dropped - before.dropped).toBe(1)
      expect(server.counts.grants - before.grants).toBe(1)
      expect(server.counts.reuse).toBe(0)
      expect(await grantsIn(others)).toBe(1)
    } finally {
      await context.close()
    }
  }, 20_000)

  // Issue 12 §3: the other tabs used to go on without Authorization and never hear of the end.
  it('the session ends in one tab: every tab fires sessionExpired once and fails fast, one grant attempt in all', async () => {
    const context = await browser.newContext()
    try {
      const pages = await openTabs(context, 3)
      // Signed in again elsewhere: the tabs' access tokens are gone and their refresh token is
      // no longer valid (invalid_grant).
      server.signIn()
      const results = await Promise.all(pages.map((page) => burst(page, 2)))
      for (const result of results) {
        expect(result.ok).toBe(0)
        expect(result.failed).toHaveLength(8)
        for (const failure of result.failed) expect(failure).toMatch(/session has expired/i)
      }
      for (const page of pages) {
        expect(await page.evaluate(() => window.reauthTab.stats().sessionsExpired)).toBe(1)
      }
      expect(await grantsIn(pages)).toBe(1)
      // Later requests fail fast: no token request, still one sessionExpired per tab.
      const again = await Promise.all(pages.map((page) => burst(page, 1)))
      for (const result of again) expect(result.ok).toBe(0)
      expect(await grantsIn(pages)).toBe(1)
      for (const page of pages) {
        expect(await page.evaluate(() => window.reauthTab.stats().sessionsExpired)).toBe(1)
      }
    } finally {
      await context.close()
    }
  }, 20_000)
})
