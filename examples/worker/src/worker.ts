/**
 * A Cloudflare Worker that calls a protected API through @reauth/fetch (no nodejs_compat).
 * The engine lives as long as the isolate, so concurrent requests to this Worker share one
 * refresh. Bindings: ISSUER, CLIENT_ID, REFRESH_TOKEN (a secret), API_URL.
 */
import { createEngine, type Engine } from '@reauth/core'
import { createFetch } from '@reauth/fetch'
import { createRefreshGrant } from '@reauth/oauth'

export interface Env {
  ISSUER: string
  CLIENT_ID: string
  REFRESH_TOKEN: string
  API_URL: string
}

let engine: Engine | undefined
let api: typeof fetch | undefined

function client(env: Env): { engine: Engine; api: typeof fetch } {
  if (!engine || !api) {
    const apiUrl = new URL(env.API_URL)
    // The five lines. An isolate starts with no access token: the first request refreshes.
    // A refresh token that rotates belongs in a TokenStore on KV or a Durable Object, so
    // that every isolate sees the newest one; memory keeps this example short.
    engine = createEngine({
      tokens: {
        accessToken: 'none',
        tokenType: 'Bearer',
        refreshToken: env.REFRESH_TOKEN,
        expiresAt: 0,
      },
      refresh: createRefreshGrant({
        issuer: env.ISSUER,
        clientId: env.CLIENT_ID,
        allowInsecureRequests: apiUrl.hostname === '127.0.0.1',
      }),
    })
    api = createFetch(engine, { origins: [apiUrl.origin] })
  }
  return { engine, api }
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const { engine, api } = client(env)
    if (new URL(request.url).pathname === '/stats') return Response.json(engine.stats())
    const upstream = await api(env.API_URL)
    return new Response(upstream.body, { status: upstream.status, headers: upstream.headers })
  },
}
