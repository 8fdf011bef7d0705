import { OAuthError, parseTokenResponse, type RefreshFunction } from '@reauth/core'

/**
 * A plain refresh_token grant over fetch, enough for the contract suite. `@reauth/oauth`
 * is the real one; this keeps the contract suite independent of it.
 */
export function createTestRefresh(
  tokenEndpoint: string,
  clientId = 'reauth-test',
): RefreshFunction {
  return async ({ tokens, signal, startedAt }) => {
    const body = new URLSearchParams({ grant_type: 'refresh_token', client_id: clientId })
    if (tokens.refreshToken) body.set('refresh_token', tokens.refreshToken)
    const response = await fetch(tokenEndpoint, { method: 'POST', body, signal })
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
