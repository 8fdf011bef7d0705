/**
 * reauth over ky in a browser page, against the @reauth/msw fake authorization server and
 * protected API running in a service worker (msw/browser): nothing leaves the page.
 */
import { createEngine, OAuthError, parseTokenResponse } from '@reauth/core'
import { withReauth } from '@reauth/ky'
import { createAuthServer } from '@reauth/msw'
import ky from 'ky'
import { setupWorker } from 'msw/browser'

const origin = window.location.origin
const auth = createAuthServer({ issuer: `${origin}/auth`, accessTokenTtl: 60 })
const worker = setupWorker(...auth.handlers, auth.protect('GET', `${origin}/api/orders/:id`))

// 1. The engine: owns the tokens and the single-flight refresh.
const engine = createEngine({
  tokens: auth.signIn({ scope: 'openid offline_access' }),
  async refresh({ tokens, signal, startedAt }) {
    const body = new URLSearchParams({
      grant_type: 'refresh_token',
      client_id: 'reauth-test',
      refresh_token: tokens.refreshToken ?? '',
    })
    // The refresh may use the same instance (same origin, even): with the refresh signal it
    // goes untouched instead of waiting on itself. A URL input skips the prefixUrl.
    const response = await api.post(new URL(auth.tokenEndpoint), {
      body,
      signal,
      throwHttpErrors: false,
    })
    const json = (await response.json()) as { error?: string }
    if (!response.ok) {
      throw new OAuthError({ error: json.error ?? 'server_error', status: response.status })
    }
    return parseTokenResponse(json, { sentAt: startedAt })
  },
})

// 2. The ky instance: tokens go only to the prefixUrl's origin.
const api = withReauth(ky.create({ prefixUrl: `${origin}/api/` }), engine)

const button = document.querySelector<HTMLButtonElement>('#burst')!
const result = document.querySelector<HTMLParagraphElement>('#result')!

button.addEventListener('click', async () => {
  button.disabled = true
  auth.expireAccessTokens()
  const before = engine.stats()
  const settled = await Promise.allSettled(
    Array.from({ length: 20 }, (_, i) => api.get(`orders/${i}`).json()),
  )
  const after = engine.stats()
  const ok = settled.filter((s) => s.status === 'fulfilled').length
  result.textContent =
    `${ok}/20 ok · grants ${after.grants - before.grants}` +
    ` · joins ${after.joins - before.joins}` +
    ` · stale retries ${after.staleRetries - before.staleRetries}` +
    ` · replays ${after.replays - before.replays}`
  button.disabled = false
})

await worker.start({ onUnhandledRequest: 'error', quiet: true })
result.textContent = 'Ready.'
button.disabled = false
