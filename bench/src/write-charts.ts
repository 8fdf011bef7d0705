/**
 * The bench's pictures, next to RESULTS.md: `storm-timeline.svg` from a storm recorded now
 * (50 concurrent requests per client, server events and client timings), and
 * `overhead.svg` / `memory.svg` from the figures in RESULTS.md (the last full `pnpm bench`).
 * RESULTS.md gets the three images between its chart markers.
 *
 * `pnpm --filter @reauth/bench charts` runs it alone (about 10 s); `pnpm bench` runs it after
 * writing RESULTS.md.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { barsSvg, kindOf, medianNumber, stormTimelineSvg, tableAfter } from './charts.js'
import * as clients from './clients.js'
import type { Server } from './control.js'
import { type TimelineRun, TOKEN_DELAY_MS, timelineRun } from './scenarios.js'

/** Size of the recorded storm: small enough to draw one line per request. */
export const TIMELINE_SIZE = 50

/** reauth's clients on the left, the peers on the right. */
const TIMELINE_VARIANTS = [
  clients.reauthAxios,
  clients.axiosAuthRefresh,
  clients.reauthKy,
  clients.kyRecipe,
  clients.reauthFetch,
  clients.axiosAuthRefreshNoDedupe,
]

const file = (name: string) => new URL(`../${name}`, import.meta.url)

const START = '<!-- charts: written by bench/src/write-charts.ts -->'
const END = '<!-- /charts -->'

export function chartsBlock(): string {
  return [
    START,
    '',
    '![The storm: each request, the 401s, the grants and the replays, for reauth and its peers](storm-timeline.svg)',
    '',
    '![Throughput with a valid token against the bare clients and peers](overhead.svg)',
    '',
    '![Heap per request waiting on a refresh](memory.svg)',
    '',
    END,
  ].join('\n')
}

/** RESULTS.md with the chart block in place of the old one, or after its introduction. */
export function embedCharts(markdown: string): string {
  const start = markdown.indexOf(START)
  const end = markdown.indexOf(END)
  if (start >= 0 && end > start) {
    return markdown.slice(0, start) + chartsBlock() + markdown.slice(end + END.length)
  }
  const firstSection = markdown.indexOf('\n## ')
  if (firstSection < 0) return `${markdown.trimEnd()}\n\n${chartsBlock()}\n`
  return `${markdown.slice(0, firstSection)}\n${chartsBlock()}\n${markdown.slice(firstSection)}`
}

export function overheadSvg(markdown: string): string {
  const rows = tableAfter(markdown, '## 1.')
  const bars = (column: number) =>
    rows.map((cells) => ({
      label: cells[0] ?? '',
      value: medianNumber(cells[column]),
      kind: kindOf(cells[0] ?? ''),
    }))
  return barsSvg(
    'Throughput with a valid token (higher is better)',
    'Requests per second against a loopback server (median of the repeats), from bench/RESULTS.md (pnpm bench); bare = the same client with the token attached by hand.',
    [
      { title: 'one request at a time', unit: 'req/s', bars: bars(1) },
      { title: '100 in flight', unit: 'req/s', bars: bars(3) },
    ],
  )
}

export function memorySvg(markdown: string): string {
  const rows = tableAfter(markdown, '## 5.')
  return barsSvg(
    'Heap per request waiting on a refresh (lower is better)',
    '10 000 requests waiting on one held refresh before they are sent, heap growth per request (median of the repeats), from bench/RESULTS.md (pnpm bench).',
    [
      {
        title: 'bytes per request waiting before send',
        unit: 'B',
        bars: rows.map((cells) => ({
          label: cells[0] ?? '',
          value: medianNumber(cells[1]),
          kind: kindOf(cells[0] ?? ''),
        })),
      },
    ],
  )
}

/** Record the storms, draw the three charts, embed them in RESULTS.md. */
export async function writeCharts(
  server: Server,
  log: (line: string) => void,
): Promise<TimelineRun[]> {
  const runs: TimelineRun[] = []
  for (const variant of TIMELINE_VARIANTS) {
    const run = await timelineRun(server, variant, TIMELINE_SIZE)
    runs.push(run)
    log(`  timeline ${variant.name}: ${run.events.length} server events`)
  }
  const caption = `Recorded by pnpm bench: one run per client on loopback, the token endpoint taking ${TOKEN_DELAY_MS} ms per grant; ${new Date().toISOString().slice(0, 10)}.`
  writeFileSync(file('storm-timeline.svg'), stormTimelineSvg(runs, caption))
  const markdown = readFileSync(file('RESULTS.md'), 'utf8')
  writeFileSync(file('overhead.svg'), overheadSvg(markdown))
  writeFileSync(file('memory.svg'), memorySvg(markdown))
  writeFileSync(file('RESULTS.md'), embedCharts(markdown))
  log('wrote bench/storm-timeline.svg, bench/overhead.svg, bench/memory.svg')
  return runs
}
