/**
 * reauth over an axios instance you already have, on Node, against a real OpenID Provider:
 * the embedded oidc-provider by default, or yours (REAUTH_ISSUER, REAUTH_CLIENT_ID,
 * REAUTH_REFRESH_TOKEN, REAUTH_API_URL). Three bursts, each after the access token expired.
 */
import { attachReauth } from '@reauth/axios'
import { createEngine } from '@reauth/core'
import { createRefreshGrant } from '@reauth/oauth'
import { exampleSession } from '@reauth/testbed'
import axios from 'axios'

const session = await exampleSession()
console.log(`provider: ${session.describe}`)

// The instance the app already has; nothing else in the app changes.
const api = axios.create({ baseURL: session.api, timeout: 5_000 })
// The five lines: an engine over the provider's token endpoint, attached to the instance.
const engine = createEngine({ tokens: session.tokens, refresh: createRefreshGrant(session.client) })
const detach = attachReauth(api, engine)

let failed = 0
for (let burst = 1; burst <= 3; burst++) {
  const results = await Promise.allSettled(Array.from({ length: 50 }, () => api.get(session.path)))
  const ok = results.filter((r) => r.status === 'fulfilled' && r.value.status === 200).length
  failed += 50 - ok
  console.log(`burst ${burst}: ${ok}/50 ok, grants so far ${engine.stats().grants}`)
  await new Promise((resolve) => setTimeout(resolve, 2_500)) // let the access token expire
}
console.table(engine.stats())
detach()
await session.close()
process.exitCode = failed === 0 ? 0 : 1
