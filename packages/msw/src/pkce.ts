/** Base64url without padding (RFC 4648 §5), as PKCE and opaque tokens use it. */
export function base64url(bytes: Uint8Array): string {
  let binary = ''
  for (const byte of bytes) binary += String.fromCharCode(byte)
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}

/** An unguessable opaque value: `bytes` random bytes, base64url encoded. */
export function randomToken(bytes = 32): string {
  const buffer = new Uint8Array(bytes)
  crypto.getRandomValues(buffer)
  return base64url(buffer)
}

/** RFC 7636 §4.1: 43 to 128 unreserved characters. */
export const CODE_VERIFIER = /^[A-Za-z0-9\-._~]{43,128}$/

/**
 * The PKCE `S256` code challenge of a code verifier: `BASE64URL(SHA256(ASCII(verifier)))`
 * (RFC 7636 §4.2), computed with WebCrypto so it runs in browsers and Node alike.
 *
 * @example
 * const verifier = 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk'
 * const code = auth.createAuthorizationCode({
 *   codeChallenge: await pkceChallenge(verifier), // 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM'
 *   redirectUri: 'https://app.example.test/callback',
 * })
 */
export async function pkceChallenge(verifier: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier))
  return base64url(new Uint8Array(digest))
}
