import { createHash, createPublicKey, type JsonWebKey, verify } from 'node:crypto'

/** Why a DPoP proof was refused (never quoting the proof, key or token). */
export class DpopProofError extends Error {
  override name = 'DpopProofError'
}

/** What {@link verifyDpopProof} checks a proof against: the request as the API received it. */
export interface DpopProofCheck {
  /** The `DPoP` header. */
  proof: string | undefined
  method: string
  /** The absolute URL the request was sent to (its query and fragment are ignored). */
  url: string
  /** The access token from `Authorization: DPoP`. */
  accessToken: string
  /** Proofs whose `iat` is further than this from the clock are refused (seconds). */
  iatWindow?: number
}

const b64url = (data: string | Buffer) => createHash('sha256').update(data).digest('base64url')

function json(part: string): Record<string, unknown> {
  const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'))
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new DpopProofError('The DPoP proof is not a JWS')
  }
  return value as Record<string, unknown>
}

function withoutQuery(url: string): string {
  const parsed = new URL(url)
  return `${parsed.origin}${parsed.pathname}`
}

/**
 * Verify a DPoP proof for a resource request as RFC 9449 §4.3 and §7.1 say, with node:crypto
 * only (no code shared with reauth's client side): ES256 signature by the embedded public
 * `jwk`, `typ`, `htm`, `htu`, `iat` within the window, `jti`, and `ath` = hash of the token.
 * Returns the key's RFC 7638 thumbprint (to compare with the token's `cnf.jkt`), the `jti` and
 * the `nonce` claim, if any (the caller checks it against its own).
 */
export function verifyDpopProof(check: DpopProofCheck): {
  jkt: string
  jti: string
  nonce: string | undefined
} {
  const { proof } = check
  if (!proof) throw new DpopProofError('The request has no DPoP proof')
  const parts = proof.split('.')
  if (parts.length !== 3) throw new DpopProofError('The DPoP proof is not a compact JWS')
  const [h = '', c = '', s = ''] = parts
  let header: Record<string, unknown>
  let claims: Record<string, unknown>
  try {
    header = json(h)
    claims = json(c)
  } catch {
    throw new DpopProofError('The DPoP proof is not a JWS')
  }
  if (header.typ !== 'dpop+jwt') throw new DpopProofError('The DPoP proof typ is not dpop+jwt')
  if (header.alg !== 'ES256') throw new DpopProofError('The DPoP proof alg is not ES256')
  const jwk =
    typeof header.jwk === 'object' && header.jwk !== null
      ? (header.jwk as Record<string, unknown>)
      : undefined
  if (jwk?.kty !== 'EC' || jwk.crv !== 'P-256' || 'd' in jwk) {
    throw new DpopProofError('The DPoP proof jwk is not an EC P-256 public key')
  }
  let valid = false
  try {
    const key = createPublicKey({
      key: { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y } as JsonWebKey,
      format: 'jwk',
    })
    valid = verify(
      'sha256',
      Buffer.from(`${h}.${c}`),
      { key, dsaEncoding: 'ieee-p1363' },
      Buffer.from(s, 'base64url'),
    )
  } catch {
    valid = false
  }
  if (!valid) throw new DpopProofError('The DPoP proof signature is invalid')
  if (claims.htm !== check.method) throw new DpopProofError('The DPoP proof htm does not match')
  if (typeof claims.htu !== 'string' || !URL.canParse(claims.htu)) {
    throw new DpopProofError('The DPoP proof htu does not match')
  }
  if (withoutQuery(claims.htu) !== withoutQuery(check.url)) {
    throw new DpopProofError('The DPoP proof htu does not match')
  }
  const iat = claims.iat
  if (typeof iat !== 'number' || Math.abs(Date.now() / 1000 - iat) > (check.iatWindow ?? 60)) {
    throw new DpopProofError('The DPoP proof iat is not recent enough')
  }
  if (typeof claims.jti !== 'string' || claims.jti === '') {
    throw new DpopProofError('The DPoP proof has no jti')
  }
  if (claims.ath !== b64url(check.accessToken)) {
    throw new DpopProofError('The DPoP proof ath does not match the access token')
  }
  const jkt = b64url(JSON.stringify({ crv: 'P-256', kty: 'EC', x: jwk.x, y: jwk.y }))
  return {
    jkt,
    jti: claims.jti,
    nonce: typeof claims.nonce === 'string' ? claims.nonce : undefined,
  }
}
