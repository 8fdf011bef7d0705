/**
 * DPoP (RFC 9449) in a real Chromium, through @reauth/browser's stores: the key pair of a
 * DPoP-bound set lives in IndexedDB, not extractable, shared by three tabs, kept across a
 * reload, deleted by a sign-out; an expiry costs one grant across the tabs. The server checks
 * every proof (signature, htm/htu, iat, jti, ath) with @reauth/msw's verifier and binds the
 * tokens to the key's thumbprint, so a tab with any other key would fail.
 */
import { randomUUID } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createDpopVerifier } from '../../packages/msw/src/dpop.js'
import { bundlePage, launchChromium } from './chromium.js'
import type { StoreKind } from './page/dpop.js'
import { json, readBody } from './server.js'

interface DpopServer {
  origin: string
  expireAll(): void
  counts: { grants: number; reuse: number; api: number; api401: number; proofErrors: string[] }
  /** The thumbprint every token issued so far is bound to (one sign-in per test). */
  boundTo(): string | undefined
  close(): Promise<void>
}

async function startDpopServer(page: { html: string; script: string }): Promise<DpopServer> {
  const verifier = createDpopVerifier({ requireNonce: false, required: true, iatWindow: 60 })
  /** access token → the jkt it is bound to (`cnf.jkt`) */
  const access = new Map<string, string>()
  let current: { refreshToken: string; jkt: string } | undefined
  const used = new Set<string>()
  const counts = { grants: 0, reuse: 0, api: 0, api401: 0, proofErrors: [] as string[] }
  let origin = ''

  const asRequest = (req: IncomingMessage) =>
    new Request(`${origin}${req.url}`, {
      method: req.method ?? 'GET',
      headers: Object.entries(req.headers).flatMap(([name, value]) =>
        typeof value === 'string' ? [[name, value] as [string, string]] : [],
      ),
    })

  function issue(jkt: string) {
    const accessToken = `at-${randomUUID()}`
    const refreshToken = `rt-${randomUUID()}`
    access.set(accessToken, jkt)
    current = { refreshToken, jkt }
    return {
      access_token: accessToken,
      token_type: 'DPoP',
      refresh_token: refreshToken,
      expires_in: 3600,
    }
  }

  async function token(req: IncomingMessage, res: ServerResponse) {
    const form = new URLSearchParams(await readBody(req))
    const proof = await verifier.verify(asRequest(req))
    if (!proof.ok) {
      counts.proofErrors.push(`token: ${proof.description}`)
      return json(res, 400, { error: proof.error })
    }
    const grant = form.get('grant_type')
    if (grant === 'sign_in') {
      used.clear()
      access.clear()
      return json(res, 200, issue(proof.jkt))
    }
    if (grant !== 'refresh_token') return json(res, 400, { error: 'unsupported_grant_type' })
    const presented = form.get('refresh_token') ?? ''
    if (current && presented === current.refreshToken) {
      // RFC 9449 §5: a refresh token bound to a key is only good with a proof of that key.
      if (proof.jkt !== current.jkt) {
        counts.proofErrors.push('token: the proof key is not the one the refresh token is bound to')
        return json(res, 400, { error: 'invalid_dpop_proof' })
      }
      used.add(presented)
      counts.grants++
      return json(res, 200, issue(current.jkt))
    }
    if (used.has(presented)) {
      counts.reuse++
      current = undefined
      access.clear()
    }
    return json(res, 400, { error: 'invalid_grant' })
  }

  async function api(req: IncomingMessage, res: ServerResponse) {
    counts.api++
    const header = req.headers.authorization ?? ''
    const presented = header.startsWith('DPoP ') ? header.slice(5) : ''
    const bound = access.get(presented)
    if (bound === undefined) {
      counts.api401++
      return json(
        res,
        401,
        { error: 'invalid_token' },
        {
          'www-authenticate': 'DPoP algs="ES256", error="invalid_token"',
        },
      )
    }
    const proof = await verifier.verify(asRequest(req), { accessToken: presented })
    if (!proof.ok || proof.jkt !== bound) {
      counts.proofErrors.push(
        `api: ${proof.ok ? 'the proof key is not the token’s' : proof.description}`,
      )
      return json(
        res,
        401,
        { error: 'invalid_dpop_proof' },
        {
          'www-authenticate': 'DPoP algs="ES256", error="invalid_dpop_proof"',
        },
      )
    }
    return json(res, 200, { ok: true })
  }

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x')
    if (req.method === 'GET' && url.pathname === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
      return void res.end(page.html)
    }
    if (req.method === 'GET' && url.pathname === '/dpop.js') {
      res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' })
      return void res.end(page.script)
    }
    if (req.method === 'POST' && url.pathname === '/token') return void token(req, res)
    if (req.method === 'GET' && url.pathname === '/api/data') return void api(req, res)
    res.writeHead(404).end()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    origin,
    counts,
    expireAll: () => access.clear(),
    boundTo: () => current?.jkt,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

let browser: Browser
let server: DpopServer

beforeAll(async () => {
  const script = await bundlePage(fileURLToPath(new URL('./page/dpop.ts', import.meta.url)))
  const html =
    '<!doctype html><meta charset="utf-8"><title>reauth dpop</title><script type="module" src="/dpop.js"></script>'
  ;[server, browser] = await Promise.all([startDpopServer({ html, script }), launchChromium()])
}, 30_000)

afterAll(async () => {
  await browser?.close()
  await server?.close()
}, 10_000)

async function load(page: Page, tab: string, kind: StoreKind, signIn: boolean) {
  await page.waitForFunction(() => 'reauthDpop' in window)
  return page.evaluate(([tab, kind, signIn]) => window.reauthDpop.start(tab, kind, signIn), [
    tab,
    kind,
    signIn,
  ] as const)
}

async function openTabs(context: BrowserContext, kind: StoreKind): Promise<Page[]> {
  const pages: Page[] = []
  for (let i = 0; i < 3; i++) {
    const page = await context.newPage()
    page.setDefaultTimeout(10_000)
    await page.goto(server.origin)
    // The first tab signs in (a new key pair); the others find the set and its key.
    expect(await load(page, `tab${i}`, kind, i === 0)).toBe(true)
    pages.push(page)
  }
  return pages
}

const thumbprints = (pages: Page[]) =>
  Promise.all(pages.map((page) => page.evaluate(() => window.reauthDpop.thumbprint())))

const grantsIn = async (pages: Page[]) => {
  let grants = 0
  for (const page of pages) grants += await page.evaluate(() => window.reauthDpop.grants())
  return grants
}

describe.each([
  ['createStorageStore(localStorage)', 'storage'],
  ['createBroadcastStore({ persist: sessionStorage })', 'broadcast'],
] as const)('DPoP in Chromium with %s', (_, kind) => {
  it('three tabs share one non-extractable key from IndexedDB; a reload keeps it; an expiry costs one grant; clear() deletes it', async () => {
    const context = await browser.newContext()
    try {
      const before = { ...server.counts, proofErrors: server.counts.proofErrors.length }
      const pages = await openTabs(context, kind)
      const [first, second] = pages as [Page, Page, Page]

      // One key, in every tab: the thumbprint the server bound the tokens to.
      const jkt = server.boundTo()
      expect(jkt).toMatch(/^[A-Za-z0-9_-]{43}$/)
      expect(await thumbprints(pages)).toEqual([jkt, jkt, jkt])
      for (const page of pages) {
        expect(await page.evaluate(() => window.reauthDpop.extractable())).toBe(false)
        expect(await page.evaluate(() => window.reauthDpop.exportPrivate())).toMatch(/^rejected: /)
      }
      // IndexedDB holds the pair; Web Storage only its thumbprint.
      const records = await first.evaluate(() => window.reauthDpop.keyRecords())
      expect(records).toHaveLength(1)
      expect(records[0]).toContain(jkt)
      const text = await first.evaluate(() => window.reauthDpop.storedText())
      expect(JSON.parse(text ?? '{}').tokens.dpopJkt).toBe(jkt)
      expect(text).not.toMatch(/privateKey|"d"/)

      // Requests carry proofs of that key, from every tab.
      for (const page of pages) {
        expect(await page.evaluate(() => window.reauthDpop.burst(2))).toEqual({ ok: 4, failed: [] })
      }

      // A reload: the set comes back from Web Storage, its key from IndexedDB.
      await second.reload()
      expect(await load(second, 'tab1', kind, false)).toBe(true)
      expect(await second.evaluate(() => window.reauthDpop.thumbprint())).toBe(jkt)
      expect(await second.evaluate(() => window.reauthDpop.extractable())).toBe(false)

      // Every access token expires: one grant across the three tabs, with the shared key.
      server.expireAll()
      const grantsBefore = server.counts.grants
      const results = await Promise.all(
        pages.map((page) => page.evaluate(() => window.reauthDpop.burst(5))),
      )
      for (const result of results) expect(result).toEqual({ ok: 10, failed: [] })
      expect(server.counts.grants - grantsBefore).toBe(1)
      expect(await grantsIn(pages)).toBe(1)
      expect(server.counts.reuse - before.reuse).toBe(0)
      expect(server.counts.api401 - before.api401).toBeGreaterThan(0)
      // The refresh kept the key: still one pair, still the same thumbprint everywhere.
      expect(server.boundTo()).toBe(jkt)
      expect(await thumbprints(pages)).toEqual([jkt, jkt, jkt])
      expect(await first.evaluate(() => window.reauthDpop.keyRecords())).toHaveLength(1)
      expect(server.counts.proofErrors.slice(before.proofErrors)).toEqual([])

      // Sign-out: the pair is deleted with the tokens.
      await first.evaluate(() => window.reauthDpop.signOut())
      expect(await first.evaluate(() => window.reauthDpop.keyRecords())).toEqual([])
      expect(await first.evaluate(() => window.reauthDpop.thumbprint())).toBeUndefined()
      if (kind === 'storage') {
        // the other tabs read the same localStorage
        expect(await second.evaluate(() => window.reauthDpop.thumbprint())).toBeUndefined()
      } else {
        await second.waitForFunction(() =>
          window.reauthDpop.thumbprint().then((value) => value === undefined),
        )
      }
      for (const page of pages) {
        expect(await page.evaluate(() => window.reauthDpop.logs())).toEqual([])
      }
    } finally {
      await context.close()
    }
  }, 30_000)
})
