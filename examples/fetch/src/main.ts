/**
 * reauth over fetch, on Node, against a real OpenID Provider: the embedded oidc-provider by
 * default, or yours (REAUTH_ISSUER, REAUTH_CLIENT_ID, REAUTH_REFRESH_TOKEN, REAUTH_API_URL).
 * Three bursts of concurrent requests, each after the access token has expired.
 */
import { createEngine } from '@reauth/core'
import { createFetch } from '@reauth/fetch'
import { createRefreshGrant } from '@reauth/oauth'
import { exampleSession } from '@reauth/testbed'

const session = await exampleSession()
console.log(`provider: ${session.describe}`)

// The five lines: an engine over the provider's token endpoint, and a fetch that uses it.
const engine = createEngine({ tokens: session.tokens, refresh: createRefreshGrant(session.client) })
const api = createFetch(engine, { origins: [session.api] })

let failed = 0
for (let burst = 1; burst <= 3; burst++) {
  const statuses = await Promise.all(
    Array.from({ length: 50 }, async () => (await api(`${session.api}${session.path}`)).status),
  )
  failed += statuses.filter((status) => status !== 200).length
  console.log(
    `burst ${burst}: ${statuses.filter((s) => s === 200).length}/50 ok, grants so far ${engine.stats().grants}`,
  )
  await new Promise((resolve) => setTimeout(resolve, 2_500)) // let the access token expire
}
console.table(engine.stats())
await session.close()
process.exitCode = failed === 0 ? 0 : 1
