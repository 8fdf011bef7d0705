/**
 * `pnpm --filter @reauth/bench compare BEFORE.json AFTER.json`: bench/RESULTS.md rendered from
 * AFTER with a "Before and after" section against BEFORE (both raw-figure files written by
 * `pnpm bench`, e.g. `results/before.json` and `results/latest.json`), and the bar charts
 * redrawn from it. `--print` prints the markdown instead of writing anything.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { type Results, renderResults } from './report.js'
import { embedCharts, memorySvg, overheadSvg } from './write-charts.js'

const args = process.argv.slice(2).filter((a) => !a.startsWith('--'))
if (args.length !== 2) {
  console.error('usage: pnpm --filter @reauth/bench compare BEFORE.json AFTER.json [--print]')
  process.exit(2)
}
// pnpm runs scripts in bench/: take paths from where the user typed them.
const cwd = process.env.INIT_CWD ?? process.cwd()
const [before, after] = args.map(
  (file) => JSON.parse(readFileSync(resolve(cwd, file), 'utf8')) as Results,
) as [Results, Results]
const markdown = embedCharts(renderResults(after, before))
if (process.argv.includes('--print')) {
  process.stdout.write(markdown)
} else {
  const file = (name: string) => new URL(`../${name}`, import.meta.url)
  writeFileSync(file('RESULTS.md'), markdown)
  writeFileSync(file('overhead.svg'), overheadSvg(markdown))
  writeFileSync(file('memory.svg'), memorySvg(markdown))
  console.log('wrote bench/RESULTS.md (before and after), bench/overhead.svg, bench/memory.svg')
}
