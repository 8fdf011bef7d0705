import { exportDpopKeyPair, importDpopKeyPair, ReauthOptionsError } from '@reauth/core'

/**
 * A set's DPoP key pair as the Redis store writes it, inside the same JSON value as the
 * tokens (and so inside the same ciphertext with `encryptionKey`): the EC members only. The
 * private JWK is a secret, exactly like the refresh token next to it.
 */
export interface StoredDpopKey {
  publicKey: { kty: 'EC'; crv: 'P-256'; x: string; y: string }
  privateKey: { kty: 'EC'; crv: 'P-256'; x: string; y: string; d: string }
}

type PrivateMembers = StoredDpopKey['privateKey']

/**
 * The JWK of every private key this module imported. Keys read from Redis are imported
 * **non-extractable** (no code holding the set — a refresh function, a listener — can export
 * them), yet the next write of the same set, by this process, must serialise the key again:
 * the store keeps its own JWK here, where only this module can read it, for as long as the
 * key object lives.
 */
const imported = new WeakMap<CryptoKey, PrivateMembers>()

/** The error for a key the store cannot write; it never quotes the key. */
function notStorable(reason: string): ReauthOptionsError {
  return new ReauthOptionsError(`"dpopKey" ${reason}`)
}

function members(jwk: JsonWebKey): { x: string; y: string } | undefined {
  return typeof jwk.x === 'string' && typeof jwk.y === 'string' ? { x: jwk.x, y: jwk.y } : undefined
}

/**
 * The JWKs of a set's key pair, to write: the private key must be extractable, or one this
 * module imported. Otherwise a `ReauthOptionsError` naming `dpopKey` (never the key).
 */
export async function dpopKeyToJson(pair: CryptoKeyPair): Promise<StoredDpopKey> {
  const privateKey = pair?.privateKey
  const known = privateKey && imported.get(privateKey)
  let priv: PrivateMembers
  if (known) {
    // Same pair? The public key is always extractable; a mismatch is refused, not stored.
    let pub: { x: string; y: string } | undefined
    try {
      pub = members(await crypto.subtle.exportKey('jwk', pair.publicKey))
    } catch {
      pub = undefined
    }
    if (!pub || pub.x !== known.x || pub.y !== known.y) {
      throw notStorable('must be one ES256 key pair: its "publicKey" is not its "privateKey"’s')
    }
    priv = known
  } else {
    if (privateKey && typeof privateKey === 'object' && privateKey.extractable === false) {
      throw notStorable(
        'has a private key that is not extractable, and the Redis store must serialise it to ' +
          'share it between processes: create it with generateDpopKeyPair({ extractable: true }), ' +
          'or createEngine({ dpop: { extractable: true } })',
      )
    }
    let jwks: { publicKey: JsonWebKey; privateKey: JsonWebKey }
    try {
      jwks = await exportDpopKeyPair(pair)
    } catch {
      // core's message names its own parameter ("keyPair"); this one names the set's field.
      throw notStorable('must be an ES256 (ECDSA P-256) CryptoKeyPair whose key can be exported')
    }
    const pub = members(jwks.publicKey)
    const own = members(jwks.privateKey)
    const d = jwks.privateKey.d
    if (!pub || !own || typeof d !== 'string' || pub.x !== own.x || pub.y !== own.y) {
      throw notStorable('must be one ES256 key pair: its "publicKey" is not its "privateKey"’s')
    }
    priv = { kty: 'EC', crv: 'P-256', x: own.x, y: own.y, d }
  }
  return {
    publicKey: { kty: 'EC', crv: 'P-256', x: priv.x, y: priv.y },
    privateKey: { ...priv },
  }
}

/**
 * Reads key pairs back, one import per key: a store reads the set on every request, and the
 * same key comes back as the same `CryptoKeyPair` object until the stored key changes.
 */
export interface DpopKeyReader {
  /** The pair, private key non-extractable; a `ReauthOptionsError` (no key material) if invalid. */
  read(value: unknown): Promise<CryptoKeyPair>
  /** Drop the remembered pair: the stored set has no key any more (signed out, ended, replaced). */
  forget(): void
}

export function createDpopKeyReader(): DpopKeyReader {
  let last: { id: string; pair: Promise<CryptoKeyPair> } | undefined
  return {
    read(value) {
      const jwks = (typeof value === 'object' && value !== null ? value : {}) as StoredDpopKey
      const priv = jwks.privateKey as Partial<PrivateMembers> | undefined
      const id = JSON.stringify([priv?.x, priv?.y, priv?.d, jwks.publicKey?.x, jwks.publicKey?.y])
      if (last?.id === id) return last.pair
      const pair = importDpopKeyPair(jwks, { extractable: false }).then((keys) => {
        const { x, y, d } = jwks.privateKey
        imported.set(keys.privateKey, { kty: 'EC', crv: 'P-256', x, y, d })
        return keys
      })
      last = { id, pair }
      // A failed import is tried again (and refused again) on the next read.
      pair.catch(() => {
        if (last?.pair === pair) last = undefined
      })
      return pair
    },
    forget() {
      last = undefined
    },
  }
}
