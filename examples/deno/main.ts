/**
 * reauth over fetch in a Deno script. Run it against your provider and API:
 *
 *   REAUTH_ISSUER=https://id.example.com REAUTH_CLIENT_ID=my-app \
 *   REAUTH_REFRESH_TOKEN=… REAUTH_API_URL=https://api.example.com/orders \
 *   deno run --allow-net --allow-env main.ts
 *
 * (`pnpm --filter @reauth/example-deno start` runs it against the embedded oidc-provider.)
 */
import { createEngine } from '@reauth/core'
import { createFetch } from '@reauth/fetch'
import { createRefreshGrant } from '@reauth/oauth'

const env = (name: string): string => {
  const value = Deno.env.get(name)
  if (!value) throw new Error(`set ${name}`)
  return value
}
const apiUrl = new URL(env('REAUTH_API_URL'))

// The five lines: an engine over the provider's token endpoint, and a fetch that uses it.
const engine = createEngine({
  // No access token yet: expired at once, so the first request refreshes.
  tokens: {
    accessToken: 'none',
    tokenType: 'Bearer',
    refreshToken: env('REAUTH_REFRESH_TOKEN'),
    expiresAt: 0,
  },
  refresh: createRefreshGrant({
    issuer: env('REAUTH_ISSUER'),
    clientId: env('REAUTH_CLIENT_ID'),
    allowInsecureRequests: apiUrl.hostname === '127.0.0.1',
  }),
})
const api = createFetch(engine, { origins: [apiUrl.origin] })

let failed = 0
for (let burst = 1; burst <= 3; burst++) {
  const statuses = await Promise.all(
    Array.from({ length: 50 }, async () => {
      const response = await api(apiUrl)
      await response.body?.cancel()
      return response.status
    }),
  )
  failed += statuses.filter((status) => status !== 200).length
  console.log(
    `burst ${burst}: ${statuses.filter((s) => s === 200).length}/50 ok, grants so far ${engine.stats().grants}`,
  )
  const lifetime = Number(Deno.env.get('REAUTH_WAIT_MS') ?? 0)
  if (burst < 3 && lifetime > 0) await new Promise((resolve) => setTimeout(resolve, lifetime))
}
console.table(engine.stats())
Deno.exit(failed === 0 ? 0 : 1)
