/**
 * `pnpm --filter @reauth/bench charts`: the charts alone, without the full bench (see
 * write-charts.ts).
 */
import { startServer } from './control.js'
import { writeCharts } from './write-charts.js'

const server = await startServer()
try {
  await writeCharts(server, (line) => console.log(line))
} finally {
  await server.close()
}
