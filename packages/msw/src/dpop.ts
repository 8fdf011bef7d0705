import { base64url, randomToken } from './pkce.js'

/** What the fake server checks of DPoP, resolved from `createAuthServer({ dpop })`. */
export interface DpopConfig {
  /** Every proof must carry the server's current nonce (RFC 9449 §8, §9). */
  requireNonce: boolean
  /** Token requests without a proof are refused (`invalid_dpop_proof`). */
  required: boolean
  /** How far `iat` may be from the server's clock, in seconds. */
  iatWindow: number
}

/** A proof the server accepted: the thumbprint of its key. */
export interface AcceptedProof {
  ok: true
  jkt: string
}

/** Why a proof was turned away: `use_dpop_nonce` (send again with the nonce) or an invalid proof. */
export interface RejectedProof {
  ok: false
  error: 'invalid_dpop_proof' | 'use_dpop_nonce'
  description: string
}

const ES256 = { name: 'ECDSA', namedCurve: 'P-256' } as const
const MAX_PROOF_LENGTH = 8_192

function decodeJson(part: string | undefined): unknown {
  if (part === undefined || !/^[A-Za-z0-9_-]+$/.test(part)) return undefined
  try {
    const binary = atob(part.replace(/-/g, '+').replace(/_/g, '/'))
    return JSON.parse(new TextDecoder().decode(Uint8Array.from(binary, (c) => c.charCodeAt(0))))
  } catch {
    return undefined
  }
}

function decodeBytes(part: string): Uint8Array<ArrayBuffer> | undefined {
  if (!/^[A-Za-z0-9_-]+$/.test(part)) return undefined
  try {
    const binary = atob(part.replace(/-/g, '+').replace(/_/g, '/'))
    return Uint8Array.from(binary, (c) => c.charCodeAt(0))
  } catch {
    return undefined
  }
}

function record(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined
}

/** SHA-256, base64url: `ath` of a token and the RFC 7638 thumbprint of a JWK. */
export async function sha256(text: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text))
  return base64url(new Uint8Array(digest))
}

/** A URL without query and fragment, as `htu` is compared (RFC 9449 §4.3 step 9). */
function withoutQuery(url: string): string | undefined {
  try {
    const parsed = new URL(url)
    parsed.search = ''
    parsed.hash = ''
    return parsed.href
  } catch {
    return undefined
  }
}

/**
 * The fake server's DPoP proof checks (RFC 9449 §4.3), written independently of any client
 * code: `typ`, `alg` (ES256), a public `jwk`, the signature, `htm`, `htu`, `iat` within the
 * window, `jti` not seen before for that key, `ath` when a token is presented, and the nonce
 * when nonces are required. Descriptions never quote a token or key.
 */
export function createDpopVerifier(config: DpopConfig) {
  let nonce = randomToken(16)
  /** `${jkt} ${jti}` → when it may be forgotten (ms): after its `iat` has left the window. */
  const seen = new Map<string, number>()

  const invalid = (description: string): RejectedProof => ({
    ok: false,
    error: 'invalid_dpop_proof',
    description,
  })

  async function verify(
    request: Request,
    options: { accessToken?: string | undefined } = {},
  ): Promise<AcceptedProof | RejectedProof> {
    const proof = request.headers.get('dpop')
    if (proof === null) return invalid('The request has no DPoP proof')
    if (proof.length > MAX_PROOF_LENGTH) return invalid('The DPoP proof is too long')
    // Two DPoP headers arrive joined with ", ": a JWS has no comma.
    const parts = proof.trim().split('.')
    if (parts.length !== 3) return invalid('The DPoP header must be one compact JWS')
    const [encodedHeader = '', encodedClaims = '', encodedSignature = ''] = parts
    const header = record(decodeJson(encodedHeader))
    const claims = record(decodeJson(encodedClaims))
    const signature = decodeBytes(encodedSignature)
    if (!header || !claims || !signature) return invalid('The DPoP proof is not a readable JWS')
    if (header.typ !== 'dpop+jwt') return invalid('The DPoP proof "typ" must be "dpop+jwt"')
    if (header.alg !== 'ES256') return invalid('The DPoP proof "alg" must be "ES256"')
    const jwk = record(header.jwk)
    if (jwk?.kty !== 'EC' || jwk.crv !== 'P-256') {
      return invalid('The DPoP proof "jwk" must be an EC P-256 public key')
    }
    if ('d' in jwk) return invalid('The DPoP proof "jwk" must not contain a private key')
    const { x, y } = jwk
    if (typeof x !== 'string' || typeof y !== 'string') {
      return invalid('The DPoP proof "jwk" must be an EC P-256 public key')
    }
    let valid: boolean
    try {
      const key = await crypto.subtle.importKey(
        'jwk',
        { kty: 'EC', crv: 'P-256', x, y },
        ES256,
        true,
        ['verify'],
      )
      valid = await crypto.subtle.verify(
        { name: 'ECDSA', hash: 'SHA-256' },
        key,
        signature,
        new TextEncoder().encode(`${encodedHeader}.${encodedClaims}`),
      )
    } catch {
      valid = false
    }
    if (!valid) return invalid('The DPoP proof signature does not verify with its "jwk"')
    const { jti, htm, htu, iat, ath } = claims
    if (typeof jti !== 'string' || jti === '' || jti.length > 256) {
      return invalid('The DPoP proof must have a "jti"')
    }
    if (htm !== request.method) return invalid('The DPoP proof "htm" does not match the request')
    if (typeof htu !== 'string' || withoutQuery(htu) !== withoutQuery(request.url)) {
      return invalid('The DPoP proof "htu" does not match the request')
    }
    const now = Date.now()
    if (typeof iat !== 'number' || !Number.isFinite(iat)) {
      return invalid('The DPoP proof must have a numeric "iat"')
    }
    if (Math.abs(now / 1000 - iat) > config.iatWindow) {
      return invalid('The DPoP proof "iat" is not recent enough')
    }
    if (options.accessToken !== undefined && ath !== (await sha256(options.accessToken))) {
      return invalid('The DPoP proof "ath" does not match the access token')
    }
    const jkt = await sha256(JSON.stringify({ crv: 'P-256', kty: 'EC', x, y }))
    for (const [key, until] of seen) if (until < now) seen.delete(key)
    if (seen.has(`${jkt} ${jti}`)) return invalid('The DPoP proof "jti" was already used')
    if (config.requireNonce && claims.nonce !== nonce) {
      return {
        ok: false,
        error: 'use_dpop_nonce',
        description:
          claims.nonce === undefined
            ? 'The authorization server requires a nonce in DPoP proofs'
            : 'The DPoP proof nonce is not the current one',
      }
    }
    seen.set(`${jkt} ${jti}`, iat * 1000 + config.iatWindow * 1000)
    return { ok: true, jkt }
  }

  return {
    verify,
    /** The nonce proofs must carry now. */
    nonce: () => nonce,
    /** A new nonce; proofs with the old one get `use_dpop_nonce`. */
    rotate(): string {
      nonce = randomToken(16)
      return nonce
    },
    /** Forget the `jti`s seen. */
    reset(): void {
      seen.clear()
    },
  }
}

/** The verifier {@link createDpopVerifier} returns. */
export type DpopVerifier = ReturnType<typeof createDpopVerifier>

/**
 * A `WWW-Authenticate` value for a DPoP challenge (RFC 9449 §7.1): `algs`, then `error` and
 * `error_description`. Never put a token in `description`.
 */
export function dpopChallengeHeader(error?: string, description?: string): string {
  const quote = (value: string) => `"${value.replace(/[\\"]/g, '\\$&')}"`
  const params = ['algs="ES256"']
  if (error !== undefined) params.push(`error=${quote(error)}`)
  if (description !== undefined) params.push(`error_description=${quote(description)}`)
  return `DPoP ${params.join(', ')}`
}
