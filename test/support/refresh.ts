import { createDpopProof, OAuthError, parseTokenResponse, type RefreshFunction } from '@reauth/core'

/**
 * A plain refresh_token grant over fetch, enough for the contract suite. `@reauth/oauth`
 * is the real one; this keeps the contract suite independent of it.
 */
export function createTestRefresh(
  tokenEndpoint: string,
  clientId = 'reauth-test',
): RefreshFunction {
  /** The token endpoint's DPoP nonce, once it asked for one. */
  let nonce: string | undefined
  return async ({ tokens, signal, startedAt, dpop }) => {
    const body = new URLSearchParams({ grant_type: 'refresh_token', client_id: clientId })
    if (tokens.refreshToken) body.set('refresh_token', tokens.refreshToken)
    // DPoP (RFC 9449 §5): a proof per token request; one retry when the server asks for a nonce.
    const send = async () => {
      const headers: Record<string, string> = {}
      if (dpop) {
        headers.dpop = await createDpopProof(dpop, {
          htm: 'POST',
          htu: tokenEndpoint,
          ...(nonce === undefined ? {} : { nonce }),
        })
      }
      const answer = await fetch(tokenEndpoint, { method: 'POST', body, signal, headers })
      nonce = answer.headers.get('dpop-nonce') ?? nonce
      return answer
    }
    let response = await send()
    if (dpop && response.status === 400 && response.headers.has('dpop-nonce')) {
      const error = ((await response.clone().json()) as { error?: unknown }).error
      if (error === 'use_dpop_nonce') response = await send()
    }
    const text = await response.text()
    let json: unknown
    try {
      json = JSON.parse(text)
    } catch {
      if (!response.ok) throw Object.assign(new Error(`HTTP ${response.status}`), { response })
      return parseTokenResponse(text, { sentAt: startedAt })
    }
    if (!response.ok) {
      const error = (json as { error?: unknown }).error
      if (typeof error === 'string') {
        const description = (json as { error_description?: unknown }).error_description
        throw new OAuthError(
          {
            error,
            status: response.status,
            ...(typeof description === 'string' ? { errorDescription: description } : {}),
          },
          { response },
        )
      }
      throw Object.assign(new Error(`HTTP ${response.status}`), { response })
    }
    return parseTokenResponse(json, { sentAt: startedAt })
  }
}
