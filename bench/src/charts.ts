/**
 * Plain SVG charts of the bench's measured figures: the storm as a timeline per client, and
 * bars for overhead and waiter memory. Pure functions of the data they are given.
 */
import type { TimelineRun } from './scenarios.js'

const COLORS = {
  r401: '#e8833a',
  r200: '#3b6fd0',
  grant: '#2e9e5b',
  failedGrant: '#d0433b',
  request: '#9aa3ad',
  failed: '#d0433b',
  reauth: '#2e9e5b',
  bare: '#9aa3ad',
  peer: '#7c5cc4',
  text: '#1f2328',
  grid: '#e3e6ea',
}

const esc = (text: string) =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
const n = (value: number) => (Math.round(value * 10) / 10).toString()

function svg(width: number, height: number, title: string, body: string[]): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, -apple-system, Segoe UI, sans-serif" font-size="12" role="img" aria-label="${esc(title)}">`,
    `<title>${esc(title)}</title>`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    ...body,
    '</svg>',
    '',
  ].join('\n')
}

/** What one storm panel says in its title. */
export function timelineSummary(run: TimelineRun): { grants: number; ok: number; reused: number } {
  const grants = run.events.filter((e) => e.kind === 'grant')
  return {
    grants: grants.length,
    ok: run.requests.filter((r) => r.ok).length,
    reused: grants.filter((g) => g.kind === 'grant' && g.reused).length,
  }
}

/**
 * The storm as timelines, one panel per client in a grid (reauth's left, the peers' right):
 * each request's life as a line (red when it failed), the server's 401s and 200s as ticks,
 * and the token endpoint's grants as bars (red when refused). One time axis for all panels.
 */
export function stormTimelineSvg(runs: TimelineRun[], caption: string): string {
  const columns = 2
  const panelW = 470
  const laneH = 14
  const rowH = 3
  const size = Math.max(...runs.map((r) => r.requests.length))
  const panelH = 44 + laneH * 3 + size * rowH + 28
  const rows = Math.ceil(runs.length / columns)
  const width = columns * panelW + 20
  const height = 56 + rows * (panelH + 14) + 10
  const end = Math.max(
    ...runs.flatMap((r) => [
      ...r.requests.map((q) => q.end),
      ...r.events.map((e) => (e.kind === 'grant' ? e.end : e.at)),
    ]),
  )
  const step = end > 800 ? 200 : end > 400 ? 100 : 50
  const axisEnd = Math.ceil(end / step) * step
  const body: string[] = [
    `<text x="10" y="22" font-size="15" font-weight="600" fill="${COLORS.text}">A storm of ${size} concurrent requests meeting an expired token</text>`,
    `<text x="10" y="40" fill="${COLORS.text}">${esc(caption)}</text>`,
  ]
  runs.forEach((run, index) => {
    const x0 = 10 + (index % columns) * panelW
    const y0 = 56 + Math.floor(index / columns) * (panelH + 14)
    const plotX = x0 + 78
    const plotW = panelW - 100
    const px = (ms: number) => plotX + (Math.max(0, ms) / axisEnd) * plotW
    const { grants, ok, reused } = timelineSummary(run)
    const bad = grants !== 1 || ok !== run.requests.length || reused > 0
    body.push(`<g class="panel" data-variant="${esc(run.variant)}">`)
    body.push(
      `<rect x="${x0}" y="${y0}" width="${panelW - 10}" height="${panelH}" fill="none" stroke="${COLORS.grid}"/>`,
      `<text class="panel-title" x="${x0 + 8}" y="${y0 + 18}" font-weight="600" fill="${COLORS.text}">${esc(run.variant)}</text>`,
      `<text x="${x0 + 8}" y="${y0 + 34}" fill="${bad ? COLORS.failed : COLORS.text}">${grants} grant${grants === 1 ? '' : 's'} · ${ok}/${run.requests.length} ok · ${reused} refresh token${reused === 1 ? '' : 's'} reused</text>`,
    )
    const lane = (i: number) => y0 + 44 + i * laneH
    const labels = ['token endpoint', '401 answered', '200 answered']
    labels.forEach((label, i) => {
      body.push(
        `<text x="${plotX - 6}" y="${lane(i) + 10}" text-anchor="end" font-size="10" fill="${COLORS.text}">${label}</text>`,
      )
    })
    for (let t = 0; t <= axisEnd; t += step) {
      body.push(
        `<line x1="${n(px(t))}" x2="${n(px(t))}" y1="${lane(0)}" y2="${y0 + panelH - 22}" stroke="${COLORS.grid}"/>`,
        `<text x="${n(px(t))}" y="${y0 + panelH - 8}" text-anchor="middle" font-size="10" fill="${COLORS.text}">${t}${t === axisEnd ? ' ms' : ''}</text>`,
      )
    }
    for (const event of run.events) {
      if (event.kind === 'grant') {
        const color = event.ok ? COLORS.grant : COLORS.failedGrant
        body.push(
          `<rect class="grant${event.ok ? '' : ' refused'}" x="${n(px(event.start))}" y="${lane(0) + 2}" width="${n(Math.max(2, px(event.end) - px(event.start)))}" height="${laneH - 4}" fill="${color}" opacity="0.85"/>`,
        )
      } else {
        const i = event.status === 401 ? 1 : 2
        body.push(
          `<line class="${event.status === 401 ? 'r401' : 'r200'}" x1="${n(px(event.at))}" x2="${n(px(event.at))}" y1="${lane(i) + 1}" y2="${lane(i) + laneH - 1}" stroke="${event.status === 401 ? COLORS.r401 : COLORS.r200}" stroke-width="1.2"/>`,
        )
      }
    }
    body.push(
      `<text x="${plotX - 6}" y="${lane(3) + 10}" text-anchor="end" font-size="10" fill="${COLORS.text}">requests</text>`,
    )
    const ordered = [...run.requests].sort((a, b) => a.start - b.start)
    ordered.forEach((request, i) => {
      const y = lane(3) + 2 + i * rowH
      body.push(
        `<line class="request${request.ok ? '' : ' failed'}" x1="${n(px(request.start))}" x2="${n(Math.max(px(request.end), px(request.start) + 1))}" y1="${y}" y2="${y}" stroke="${request.ok ? COLORS.request : COLORS.failed}" stroke-width="2"/>`,
      )
    })
    body.push('</g>')
  })
  return svg(width, height, `Storm timeline: ${runs.map((r) => r.variant).join(', ')}`, body)
}

/** One bar of a bar chart. */
export interface Bar {
  label: string
  value: number
  kind: 'reauth' | 'bare' | 'peer'
}

/** Horizontal bars, one chart per group side by side, values printed at the bars. */
export function barsSvg(
  title: string,
  caption: string,
  groups: Array<{ title: string; unit: string; bars: Bar[] }>,
): string {
  const groupW = 470
  const barH = 18
  const labelW = 230
  const rows = Math.max(...groups.map((g) => g.bars.length))
  const width = groups.length * groupW + 20
  const height = 70 + 24 + rows * (barH + 6) + 40
  const body: string[] = [
    `<text x="10" y="22" font-size="15" font-weight="600" fill="${COLORS.text}">${esc(title)}</text>`,
    `<text x="10" y="40" fill="${COLORS.text}">${esc(caption)}</text>`,
  ]
  groups.forEach((group, g) => {
    const x0 = 10 + g * groupW
    const max = Math.max(...group.bars.map((b) => b.value))
    const plotW = groupW - labelW - 70
    body.push(`<g class="bars" data-group="${esc(group.title)}">`)
    body.push(
      `<text x="${x0}" y="70" font-weight="600" fill="${COLORS.text}">${esc(group.title)}</text>`,
    )
    group.bars.forEach((bar, i) => {
      const y = 82 + i * (barH + 6)
      const w = max > 0 ? (bar.value / max) * plotW : 0
      body.push(
        `<text x="${x0 + labelW - 6}" y="${y + 13}" text-anchor="end" fill="${COLORS.text}">${esc(bar.label)}</text>`,
        `<rect class="bar ${bar.kind}" x="${x0 + labelW}" y="${y}" width="${n(Math.max(1, w))}" height="${barH}" fill="${COLORS[bar.kind]}"/>`,
        `<text x="${n(x0 + labelW + Math.max(1, w) + 4)}" y="${y + 13}" fill="${COLORS.text}">${bar.value.toLocaleString('en-US')} ${esc(group.unit)}</text>`,
      )
    })
    body.push('</g>')
  })
  const legendY = height - 14
  const legend: Array<[keyof typeof COLORS, string]> = [
    ['reauth', 'reauth'],
    ['bare', 'bare client (token by hand)'],
    ['peer', 'peer library'],
  ]
  legend.forEach(([kind, label], i) => {
    const x = 10 + i * 220
    body.push(
      `<rect x="${x}" y="${legendY - 10}" width="12" height="12" fill="${COLORS[kind]}"/>`,
      `<text x="${x + 18}" y="${legendY}" fill="${COLORS.text}">${esc(label)}</text>`,
    )
  })
  return svg(width, height, title, body)
}

/** The first markdown table after the heading that starts with `heading`: its body rows' cells. */
export function tableAfter(markdown: string, heading: string): string[][] {
  const lines = markdown.split('\n')
  const at = lines.findIndex((line) => line.startsWith(heading))
  if (at < 0) throw new Error(`no section "${heading}" in RESULTS.md`)
  const rows: string[][] = []
  let inTable = false
  for (const line of lines.slice(at + 1)) {
    if (line.startsWith('## ')) break
    if (line.startsWith('|')) {
      inTable = true
      rows.push(
        line
          .split('|')
          .slice(1, -1)
          .map((cell) => cell.trim()),
      )
    } else if (inTable) break
  }
  // header and separator rows
  return rows.slice(2)
}

/** The leading number of a cell ("2890", "1.03", "**1.34**", "4752 (4600–4900)"). */
export function leadingNumber(cell: string | undefined): number {
  const match = /-?\d[\d,]*(\.\d+)?/.exec((cell ?? '').replace(/\*/g, ''))
  if (!match) throw new Error(`no number in "${cell}"`)
  return Number(match[0].replace(/,/g, ''))
}

/** The median of a "min / median / max" cell (its middle number), else its leading number. */
export function medianNumber(cell: string | undefined): number {
  const parts = (cell ?? '').replace(/\*/g, '').split(' / ')
  return leadingNumber(parts.length === 3 ? parts[1] : parts[0])
}

export function kindOf(label: string): Bar['kind'] {
  if (label.startsWith('@reauth/')) return 'reauth'
  // The bare clients themselves; their identical second cells (the noise floor) are drawn as peers.
  if (label.includes('(bare, token by hand)')) return 'bare'
  return 'peer'
}
