/** What the token endpoint knows about its one registered client. */
export interface ClientConfig {
  clientId: string
  clientSecret: string | undefined
}

/** Why client authentication failed: an RFC 6749 §5.2 error code and a token-free description. */
export interface ClientAuthFailure {
  error: 'invalid_client' | 'invalid_request'
  description: string
}

function formDecode(value: string): string {
  return decodeURIComponent(value.replace(/\+/g, ' '))
}

/** RFC 6749 §2.3.1: `Basic base64(urlencode(id) ":" urlencode(secret))`, UTF-8. */
function parseBasic(credentials: string): { id: string; secret: string } | undefined {
  try {
    const binary = atob(credentials)
    const text = new TextDecoder('utf-8', { fatal: true }).decode(
      Uint8Array.from(binary, (char) => char.charCodeAt(0)),
    )
    const colon = text.indexOf(':')
    if (colon < 0) return undefined
    return { id: formDecode(text.slice(0, colon)), secret: formDecode(text.slice(colon + 1)) }
  } catch {
    return undefined
  }
}

/**
 * Authenticate the client of a token request: HTTP Basic (`client_secret_basic`), body
 * `client_id` + `client_secret` (`client_secret_post`), or a public client naming itself with
 * `client_id` (or not at all). Returns `undefined` when the client is acceptable.
 */
export function authenticateClient(
  authorization: string | null,
  params: URLSearchParams,
  config: ClientConfig,
): ClientAuthFailure | undefined {
  let id = params.get('client_id')
  let secret = params.get('client_secret')
  const basic = authorization === null ? null : /^Basic +(\S+) *$/i.exec(authorization)
  if (basic) {
    const credentials = parseBasic(basic[1] ?? '')
    if (!credentials) {
      return { error: 'invalid_client', description: 'Malformed HTTP Basic client credentials' }
    }
    if (secret !== null) {
      return {
        error: 'invalid_request',
        description: 'Use only one client authentication method (HTTP Basic or client_secret)',
      }
    }
    if (id !== null && id !== credentials.id) {
      return {
        error: 'invalid_request',
        description: 'client_id differs from the HTTP Basic client',
      }
    }
    id = credentials.id
    secret = credentials.secret
  }
  if (id !== null && id !== config.clientId) {
    return { error: 'invalid_client', description: 'Unknown client' }
  }
  if (config.clientSecret !== undefined) {
    if (id === null)
      return { error: 'invalid_client', description: 'Client authentication required' }
    if (secret !== config.clientSecret) {
      return { error: 'invalid_client', description: 'Client authentication failed' }
    }
  }
  return undefined
}
