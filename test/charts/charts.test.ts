/**
 * The bench's committed SVG charts render in Chromium: each is opened as a page (the SVG
 * document itself) and rasterised through an <img> onto a canvas; the test checks the
 * elements the chart must have and that the raster is not blank. The storm timeline must also
 * still show what bench/RESULTS.md claims: one grant and every request served for reauth.
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { launchChromium } from '../browser/chromium.js'

const bench = (name: string) => fileURLToPath(new URL(`../../bench/${name}`, import.meta.url))

let browser: Browser
let page: Page

beforeAll(async () => {
  browser = await launchChromium()
  page = await browser.newPage()
  page.setDefaultTimeout(20_000)
}, 30_000)

afterAll(async () => {
  await browser?.close()
})

/** Open the SVG file as the page; rasterise it; count its painted pixels and some elements. */
async function render(name: string, selectors: string[]) {
  await page.goto(`file://${bench(name)}`)
  return page.evaluate(async (selectors) => {
    const root = document.documentElement as unknown as SVGSVGElement
    const box = root.getBoundingClientRect()
    const source = new XMLSerializer().serializeToString(root)
    const image = new Image()
    image.src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(source)}`
    await image.decode()
    const canvas = document.createElementNS(
      'http://www.w3.org/1999/xhtml',
      'canvas',
    ) as HTMLCanvasElement
    canvas.width = image.naturalWidth
    canvas.height = image.naturalHeight
    const context = canvas.getContext('2d')
    if (!context) throw new Error('no 2d context')
    context.drawImage(image, 0, 0)
    const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data
    let painted = 0
    for (let i = 0; i < pixels.length; i += 4) {
      if ((pixels[i] ?? 255) < 240 || (pixels[i + 1] ?? 255) < 240 || (pixels[i + 2] ?? 255) < 240)
        painted++
    }
    const counts: Record<string, number> = {}
    for (const selector of selectors) counts[selector] = document.querySelectorAll(selector).length
    const widths = [...document.querySelectorAll('rect.grant, rect.bar')].map(
      (r) => (r as SVGGraphicsElement).getBBox().width,
    )
    return {
      tag: root.tagName,
      width: box.width,
      height: box.height,
      raster: [canvas.width, canvas.height],
      painted: painted / (pixels.length / 4),
      counts,
      widths,
      panels: [...document.querySelectorAll('g.panel')].map((g) => ({
        variant: g.getAttribute('data-variant') ?? '',
        grants: g.querySelectorAll('rect.grant').length,
        refused: g.querySelectorAll('rect.grant.refused').length,
        r401: g.querySelectorAll('line.r401').length,
        r200: g.querySelectorAll('line.r200').length,
        requests: g.querySelectorAll('line.request').length,
        failed: g.querySelectorAll('line.request.failed').length,
      })),
    }
  }, selectors)
}

describe('bench charts render in Chromium', () => {
  it('storm-timeline.svg: a panel per client, reauth with one grant and every request served', async () => {
    const result = await render('storm-timeline.svg', ['g.panel', 'rect.grant', 'line.request'])
    expect(result.tag).toBe('svg')
    expect(result.width).toBeGreaterThan(500)
    expect(result.raster[0]).toBeGreaterThan(500)
    // lines, bars and text: a few percent of the raster is painted, not 0 and not all of it
    expect(result.painted).toBeGreaterThan(0.02)
    expect(result.painted).toBeLessThan(0.9)
    expect(result.widths.every((w) => w > 0)).toBe(true)
    const variants = result.panels.map((p) => p.variant)
    expect(variants).toEqual(
      expect.arrayContaining(['@reauth/axios', '@reauth/ky', '@reauth/fetch']),
    )
    expect(result.panels.length).toBeGreaterThanOrEqual(6)
    for (const panel of result.panels) {
      expect(panel.requests, panel.variant).toBe(50)
      expect(panel.grants, panel.variant).toBeGreaterThanOrEqual(1)
      expect(panel.r401, panel.variant).toBeGreaterThanOrEqual(1)
      if (panel.variant.startsWith('@reauth/')) {
        expect(panel, panel.variant).toMatchObject({
          grants: 1,
          refused: 0,
          r401: 50,
          r200: 50,
          failed: 0,
        })
      }
    }
  })

  it('overhead.svg: two groups of bars, one per row of RESULTS.md §1 each', async () => {
    const results = readFileSync(bench('RESULTS.md'), 'utf8')
    const section = results.slice(results.indexOf('## 1.'), results.indexOf('## 2.'))
    // The chart draws §1's first table (its DPoP table, when there is one, follows it).
    const lines = section.split('\n')
    const first = lines.findIndex((l) => l.startsWith('|'))
    const end = lines.findIndex((l, i) => i > first && !l.startsWith('|'))
    const table = lines.slice(first, end < 0 ? undefined : end)
    const rows = table.filter((l) => /^\| [^-|]/.test(l)).length - 1
    const result = await render('overhead.svg', [
      'g.bars',
      'rect.bar',
      'rect.bar.reauth',
      'rect.bar.bare',
    ])
    expect(result.counts['g.bars']).toBe(2)
    expect(result.counts['rect.bar']).toBe(rows * 2)
    expect(result.counts['rect.bar.reauth']).toBe(6)
    expect(result.counts['rect.bar.bare']).toBe(6)
    expect(result.painted).toBeGreaterThan(0.02)
    expect(result.widths.every((w) => w > 0)).toBe(true)
  })

  it('memory.svg: a bar per row of RESULTS.md §5', async () => {
    const result = await render('memory.svg', ['rect.bar', 'rect.bar.reauth', 'rect.bar.peer'])
    expect(result.counts['rect.bar.reauth']).toBe(3)
    expect(result.counts['rect.bar.peer']).toBeGreaterThanOrEqual(1)
    expect(result.painted).toBeGreaterThan(0.02)
  })

  it('RESULTS.md embeds the three charts and the README the storm timeline', () => {
    const results = readFileSync(bench('RESULTS.md'), 'utf8')
    for (const chart of ['storm-timeline.svg', 'overhead.svg', 'memory.svg']) {
      expect(results).toContain(`](${chart})`)
    }
    const readme = readFileSync(fileURLToPath(new URL('../../README.md', import.meta.url)), 'utf8')
    expect(readme).toContain('](bench/storm-timeline.svg)')
  })
})
