import { ReauthOptionsError } from '@reauth/core'

/**
 * A key to encrypt the stored token set with (AES-GCM): a `CryptoKey` for `AES-GCM` with
 * `encrypt` and `decrypt` usages, or 16, 24 or 32 raw bytes.
 *
 * @example
 * const encryptionKey: EncryptionKey = Buffer.from(process.env.REAUTH_KEY!, 'base64')
 */
export type EncryptionKey = CryptoKey | Uint8Array

/**
 * The prefix of an encrypted value: format 2, AES-GCM, 96-bit IV, written as
 * `aesgcm2:<version>:<iv>.<ciphertext>` with the store's key and the version as additional
 * authenticated data.
 */
export const ENCRYPTED_PREFIX = 'aesgcm2:'

/** Format 1 bound the key name but not the version: an older ciphertext read as current. */
export const LEGACY_PREFIX = 'aesgcm1:'

/** Why a stored ciphertext was refused. */
export type DecryptProblem = 'rolled back' | 'not authentic'

/**
 * Seals the stored value to the store's key **and** the version it is written as, so a
 * ciphertext copied to another key, or written back over a later version of the same key
 * (a rollback to an older, spent refresh token), does not decrypt.
 */
export interface Cipher {
  encrypt(plain: string, version: number): Promise<string>
  /** The plaintext, or why the value was refused: its version is not `version`, or it fails authentication. */
  decrypt(
    stored: string,
    version: number,
  ): Promise<{ plain: string } | { problem: DecryptProblem; cause?: unknown }>
}

function subtle(): SubtleCrypto {
  const value = globalThis.crypto?.subtle
  if (!value)
    throw new ReauthOptionsError('"encryptionKey" needs WebCrypto (globalThis.crypto.subtle)')
  return value
}

function toBase64(bytes: Uint8Array): string {
  let binary = ''
  for (const byte of bytes) binary += String.fromCharCode(byte)
  return btoa(binary)
}

function fromBase64(text: string): Uint8Array<ArrayBuffer> {
  const binary = atob(text)
  const bytes = new Uint8Array(binary.length)
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i)
  return bytes
}

/** Validate the key at the factory; import raw bytes lazily (WebCrypto is async). */
export function createCipher(key: unknown, associated: string): Cipher {
  let getKey: () => Promise<CryptoKey>
  if (key instanceof Uint8Array) {
    if (![16, 24, 32].includes(key.byteLength)) {
      throw new ReauthOptionsError('"encryptionKey" must be 16, 24 or 32 bytes (AES-128/192/256)')
    }
    const raw = new Uint8Array(key)
    const api = subtle()
    let imported: Promise<CryptoKey> | undefined
    getKey = () => {
      imported ??= api.importKey('raw', raw, 'AES-GCM', false, ['encrypt', 'decrypt'])
      return imported
    }
  } else if (
    typeof key === 'object' &&
    key !== null &&
    (key as CryptoKey).algorithm?.name === 'AES-GCM' &&
    (key as CryptoKey).usages?.includes('encrypt') &&
    (key as CryptoKey).usages?.includes('decrypt')
  ) {
    subtle()
    const cryptoKey = key as CryptoKey
    getKey = () => Promise.resolve(cryptoKey)
  } else {
    throw new ReauthOptionsError(
      '"encryptionKey" must be an AES-GCM CryptoKey (usages encrypt and decrypt) or 16, 24 or 32 bytes',
    )
  }
  // JSON keeps the pair unambiguous whatever characters the key name has.
  const additionalData = (version: number) =>
    new TextEncoder().encode(JSON.stringify([associated, version]))
  return {
    async encrypt(plain, version) {
      const iv = globalThis.crypto.getRandomValues(new Uint8Array(12))
      const sealed = await subtle().encrypt(
        { name: 'AES-GCM', iv, additionalData: additionalData(version) },
        await getKey(),
        new TextEncoder().encode(plain),
      )
      return `${ENCRYPTED_PREFIX}${version}:${toBase64(iv)}.${toBase64(new Uint8Array(sealed))}`
    },
    async decrypt(stored, version) {
      const body = stored.slice(ENCRYPTED_PREFIX.length)
      const colon = body.indexOf(':')
      // The version in clear only names the problem; the additional data is what enforces it.
      if (colon < 0 || body.slice(0, colon) !== String(version)) return { problem: 'rolled back' }
      const [iv = '', sealed = ''] = body.slice(colon + 1).split('.')
      try {
        const plain = await subtle().decrypt(
          { name: 'AES-GCM', iv: fromBase64(iv), additionalData: additionalData(version) },
          await getKey(),
          fromBase64(sealed),
        )
        return { plain: new TextDecoder().decode(plain) }
      } catch (cause) {
        return { problem: 'not authentic', cause }
      }
    },
  }
}
