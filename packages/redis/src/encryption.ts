import { ReauthOptionsError } from '@reauth/core'

/**
 * A key to encrypt the stored token set with (AES-GCM): a `CryptoKey` for `AES-GCM` with
 * `encrypt` and `decrypt` usages, or 16, 24 or 32 raw bytes.
 *
 * @example
 * const encryptionKey: EncryptionKey = Buffer.from(process.env.REAUTH_KEY!, 'base64')
 */
export type EncryptionKey = CryptoKey | Uint8Array

/** The prefix of an encrypted value: format version 1, AES-GCM, 96-bit IV. */
export const ENCRYPTED_PREFIX = 'aesgcm1:'

export interface Cipher {
  encrypt(plain: string): Promise<string>
  decrypt(stored: string): Promise<string>
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
  const additionalData = new TextEncoder().encode(associated)
  return {
    async encrypt(plain) {
      const iv = globalThis.crypto.getRandomValues(new Uint8Array(12))
      const sealed = await subtle().encrypt(
        { name: 'AES-GCM', iv, additionalData },
        await getKey(),
        new TextEncoder().encode(plain),
      )
      return `${ENCRYPTED_PREFIX}${toBase64(iv)}.${toBase64(new Uint8Array(sealed))}`
    },
    async decrypt(stored) {
      const [iv = '', sealed = ''] = stored.slice(ENCRYPTED_PREFIX.length).split('.')
      const plain = await subtle().decrypt(
        { name: 'AES-GCM', iv: fromBase64(iv), additionalData },
        await getKey(),
        fromBase64(sealed),
      )
      return new TextDecoder().decode(plain)
    },
  }
}
