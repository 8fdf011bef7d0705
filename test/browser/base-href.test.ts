/**
 * A `<base href>` on another origin (injected markup, a CDN setup) changes where the browser
 * sends relative URLs. reauth must decide on the URL the request really reaches: with the
 * defaults (fetch: the page origin; axios baseURL '/api'; ky prefixUrl '/api'), the other
 * origin never sees the token — not in a request, not asked for in a CORS preflight.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { launchChromium } from './chromium.js'

interface Seen {
  method: string
  path: string
  authorization: string | undefined
  preflightHeaders: string | undefined
}

interface Host {
  origin: string
  seen: Seen[]
  server: Server
}

let browser: Browser
let script = ''
const hosts: Host[] = []

async function host(page: (req: IncomingMessage) => string | undefined): Promise<Host> {
  const seen: Seen[] = []
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname
    seen.push({
      method: req.method ?? '',
      path,
      authorization: req.headers.authorization,
      preflightHeaders: req.headers['access-control-request-headers'],
    })
    const cors = {
      'access-control-allow-origin': '*',
      'access-control-allow-headers': 'authorization, content-type',
      'access-control-allow-methods': 'GET, POST',
    }
    if (path === '/page.js') {
      res.writeHead(200, { 'content-type': 'text/javascript', 'cache-control': 'no-store' })
      return void res.end(script)
    }
    const html = page(req)
    if (html !== undefined) {
      res.writeHead(200, {
        'content-type': 'text/html; charset=utf-8',
        'cache-control': 'no-store',
      })
      return void res.end(html)
    }
    res.writeHead(req.method === 'OPTIONS' ? 204 : 200, {
      ...cors,
      'content-type': 'application/json',
    })
    res.end(req.method === 'OPTIONS' ? undefined : '{"ok":true}')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  const created = { origin: `http://127.0.0.1:${port}`, seen, server }
  hosts.push(created)
  return created
}

const pageHtml = (base: string | undefined) =>
  `<!doctype html><meta charset="utf-8">${base ? `<base href="${base}">` : ''}<title>base href</title>` +
  // An absolute script URL: the <base> must not move the script itself.
  `<script type="module" src="SCRIPT"></script>`

beforeAll(async () => {
  const bundle = await build({
    entryPoints: [fileURLToPath(new URL('./page/base-href.ts', import.meta.url))],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    conditions: ['source'],
    write: false,
    logLevel: 'silent',
  })
  script = bundle.outputFiles[0]?.text ?? ''
  browser = await launchChromium()
}, 30_000)

afterAll(async () => {
  await browser?.close()
  await Promise.all(hosts.map((h) => new Promise((resolve) => h.server.close(resolve))))
}, 10_000)

async function runPage(appOrigin: Host, url: string): Promise<Record<string, string>> {
  const context = await browser.newContext()
  try {
    const page = await context.newPage()
    page.setDefaultTimeout(10_000)
    await page.goto(url)
    await page.waitForFunction(() => 'baseHref' in window)
    return await page.evaluate(() => window.baseHref.run())
  } finally {
    await context.close()
    void appOrigin
  }
}

describe('<base href> in Chromium', () => {
  it('relative requests that a <base href> sends to another origin carry no token', async () => {
    const other = await host(() => undefined)
    const app = await host((req) =>
      req.url === '/'
        ? pageHtml(`${other.origin}/`).replace('SCRIPT', `http://${req.headers.host}/page.js`)
        : undefined,
    )
    const results = await runPage(app, `${app.origin}/`)
    // Every client really went to the other origin…
    const paths = other.seen.map((s) => s.path)
    for (const path of ['/api/fetch', '/api/xhr', '/api/axios-fetch', '/api/ky']) {
      expect(paths).toContain(path)
    }
    expect(results).toEqual({ fetch: 'ok', 'axios xhr': 'ok', 'axios fetch': 'ok', ky: 'ok' })
    // …and never saw the token, nor a preflight asking to send one.
    for (const seen of other.seen) {
      expect(seen.authorization).toBeUndefined()
      expect(seen.preflightHeaders ?? '').not.toMatch(/authorization/i)
    }
    expect(JSON.stringify(other.seen)).not.toContain('at-base-href-SECRET')
  })

  it('control: without a <base>, the same page sends the token to its own origin', async () => {
    const app = await host((req) =>
      req.url === '/'
        ? pageHtml(undefined).replace('SCRIPT', `http://${req.headers.host}/page.js`)
        : undefined,
    )
    const results = await runPage(app, `${app.origin}/`)
    expect(results).toEqual({ fetch: 'ok', 'axios xhr': 'ok', 'axios fetch': 'ok', ky: 'ok' })
    const api = app.seen.filter((s) => s.path.startsWith('/api/'))
    expect(api.map((s) => s.path).sort()).toEqual(
      ['/api/axios-fetch', '/api/fetch', '/api/ky', '/api/xhr'].sort(),
    )
    for (const seen of api) expect(seen.authorization).toBe('Bearer at-base-href-SECRET')
  })
})
