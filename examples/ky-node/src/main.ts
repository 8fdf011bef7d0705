/**
 * reauth over ky, on Node, against a real OpenID Provider: the embedded oidc-provider by
 * default, or yours (REAUTH_ISSUER, REAUTH_CLIENT_ID, REAUTH_REFRESH_TOKEN, REAUTH_API_URL).
 * Three bursts of concurrent requests, each after the access token has expired.
 */
import { createEngine } from '@reauth/core'
import { withReauth } from '@reauth/ky'
import { createRefreshGrant } from '@reauth/oauth'
import { exampleSession } from '@reauth/testbed'
import ky from 'ky'

const session = await exampleSession()
console.log(`provider: ${session.describe}`)

// The five lines: an engine over the provider's token endpoint, and a ky instance on it.
const engine = createEngine({ tokens: session.tokens, refresh: createRefreshGrant(session.client) })
const api = withReauth(ky.create({ prefixUrl: session.api }), engine)

let failed = 0
for (let burst = 1; burst <= 3; burst++) {
  const results = await Promise.allSettled(
    Array.from({ length: 50 }, () => api.get(session.path.replace(/^\//, ''))),
  )
  const ok = results.filter((r) => r.status === 'fulfilled' && r.value.status === 200).length
  failed += 50 - ok
  console.log(`burst ${burst}: ${ok}/50 ok, grants so far ${engine.stats().grants}`)
  await new Promise((resolve) => setTimeout(resolve, 2_500)) // let the access token expire
}
console.table(engine.stats())
await session.close()
process.exitCode = failed === 0 ? 0 : 1
