/**
 * Runs the Worker in workerd through miniflare against the embedded oidc-provider and
 * protected API: three bursts of 50 concurrent requests, each after the access token expired.
 */
import { fileURLToPath } from 'node:url'
import { exampleSession } from '@reauth/testbed'
import { build } from 'esbuild'
import { Miniflare } from 'miniflare'

const session = await exampleSession()
console.log(`provider: ${session.describe}`)

const bundle = await build({
  entryPoints: [fileURLToPath(new URL('./worker.ts', import.meta.url))],
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  conditions: ['source', 'workerd', 'worker', 'browser'],
  write: false,
  logLevel: 'warning',
})
const worker = new Miniflare({
  modules: true,
  script: bundle.outputFiles[0]?.text ?? '',
  compatibilityDate: '2025-01-01',
  bindings: {
    ISSUER: String(session.client.issuer),
    CLIENT_ID: session.client.clientId,
    REFRESH_TOKEN: session.tokens.refreshToken ?? '',
    API_URL: `${session.api}${session.path}`,
  },
})

let failed = 0
try {
  for (let burst = 1; burst <= 3; burst++) {
    const statuses = await Promise.all(
      Array.from({ length: 50 }, async () => {
        const response = await worker.dispatchFetch('http://worker.example/orders')
        await response.arrayBuffer()
        return response.status
      }),
    )
    failed += statuses.filter((status) => status !== 200).length
    const stats = (await (await worker.dispatchFetch('http://worker.example/stats')).json()) as {
      grants: number
    }
    console.log(
      `burst ${burst}: ${statuses.filter((s) => s === 200).length}/50 ok, grants so far ${stats.grants}`,
    )
    await new Promise((resolve) => setTimeout(resolve, 2_500)) // let the access token expire
  }
  console.table(await (await worker.dispatchFetch('http://worker.example/stats')).json())
} finally {
  await worker.dispose()
  await session.close()
}
process.exitCode = failed === 0 ? 0 : 1
