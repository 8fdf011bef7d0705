/**
 * One memory cell, repeated: `pnpm --filter @reauth/bench exec tsx --conditions=source --expose-gc
 * src/memory-one.ts <variant> <stage> [size] [repeats]` — for checking a change to one adapter's
 * waiter without the whole bench. Prints min / median / max bytes per waiting request, and the
 * same net of the harness's own share (`harnessRun`, measured before each repeat).
 */
import * as clients from './clients.js'
import { startServer } from './control.js'
import { harnessRun, type MemoryStage, memoryRun } from './scenarios.js'

const [name = 'reauthAxios', stage = 'after 401', size = '2000', repeats = '5'] =
  process.argv.slice(2)
const variant = (clients as unknown as Record<string, clients.Variant>)[name]
if (!variant) throw new Error(`no client ${name}`)
const server = await startServer()
const figures: number[] = []
const nets: number[] = []
for (let i = 0; i < Number(repeats); i++) {
  const harness = await harnessRun(Number(size))
  const run = await memoryRun(server, variant, stage as MemoryStage, Number(size))
  figures.push(run.bytesPerRequest)
  nets.push(run.bytesPerRequest - harness)
}
await server.close()
const line = (values: number[]) => {
  values.sort((a, b) => a - b)
  const median = values[Math.floor(values.length / 2)] ?? 0
  return `${values[0]?.toFixed(0)} / ${median.toFixed(0)} / ${values.at(-1)?.toFixed(0)}`
}
console.log(
  `${variant.name} ${stage}: ${line(figures)} B per request (net of the harness: ${line(nets)})`,
)
