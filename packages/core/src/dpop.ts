/**
 * DPoP (RFC 9449) building blocks on WebCrypto alone, so they run wherever `crypto.subtle`
 * does (browsers, Node ≥ 20, Deno, Bun, workerd): an ES256 key pair, its JWK thumbprint, a
 * proof for one send, a per-origin nonce memory, the challenge test, and key serialisation for
 * stores that cross process boundaries. No message here ever carries a key, token or proof.
 */
import { ReauthOptionsError } from './errors.js'

const ES256 = { name: 'ECDSA', namedCurve: 'P-256' } as const
const SIGN = { name: 'ECDSA', hash: 'SHA-256' } as const

/** RFC 9449 §8.1: `nonce = 1*NQCHAR`, NQCHAR = %x21 / %x23-5B / %x5D-7E. */
const NONCE = /^[\x21\x23-\x5B\x5D-\x7E]+$/
/** Longer nonces than this are ignored: a header is not a place to store data. */
const MAX_NONCE_LENGTH = 1_024
/** The default number of origins {@link createDpopNonces} remembers. */
const DEFAULT_NONCE_ORIGINS = 100

function base64url(bytes: Uint8Array): string {
  let binary = ''
  for (const byte of bytes) binary += String.fromCharCode(byte)
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}

function utf8(text: string): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(text) as Uint8Array<ArrayBuffer>
}

async function sha256(text: string): Promise<string> {
  return base64url(new Uint8Array(await crypto.subtle.digest('SHA-256', utf8(text))))
}

function isCryptoKey(value: unknown): value is CryptoKey {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as CryptoKey).type === 'string' &&
    typeof (value as CryptoKey).algorithm === 'object'
  )
}

function isEs256(key: CryptoKey): boolean {
  const algorithm = key.algorithm as EcKeyAlgorithm
  return algorithm.name === 'ECDSA' && algorithm.namedCurve === 'P-256'
}

function checkPublicKey(key: unknown, name: string): CryptoKey {
  if (!isCryptoKey(key) || key.type !== 'public' || !isEs256(key)) {
    throw new ReauthOptionsError(`"${name}" must be an ES256 (ECDSA P-256) public CryptoKey`)
  }
  return key
}

function checkKeyPair(keyPair: unknown): CryptoKeyPair {
  const pair = (typeof keyPair === 'object' && keyPair !== null ? keyPair : {}) as CryptoKeyPair
  const { privateKey } = pair
  if (!isCryptoKey(privateKey) || privateKey.type !== 'private' || !isEs256(privateKey)) {
    throw new ReauthOptionsError(
      '"keyPair" must be an ES256 (ECDSA P-256) CryptoKeyPair: its "privateKey" is not one',
    )
  }
  if (!privateKey.usages.includes('sign')) {
    throw new ReauthOptionsError('"keyPair.privateKey" must allow the "sign" usage')
  }
  checkPublicKey(pair.publicKey, 'keyPair.publicKey')
  return pair
}

/** The public members of an EC JWK, the only ones a proof's `jwk` header may carry. */
interface PublicEcJwk {
  kty: 'EC'
  crv: 'P-256'
  x: string
  y: string
}

/** The public JWK of a key, exported once per key (a proof is made per send). */
const publicJwks = new WeakMap<CryptoKey, Promise<PublicEcJwk>>()

function publicJwk(publicKey: CryptoKey): Promise<PublicEcJwk> {
  let jwk = publicJwks.get(publicKey)
  if (!jwk) {
    jwk = crypto.subtle.exportKey('jwk', publicKey).then(({ x, y }) => {
      if (typeof x !== 'string' || typeof y !== 'string') {
        throw new ReauthOptionsError('The DPoP public key could not be exported as a JWK')
      }
      return { kty: 'EC', crv: 'P-256', x, y }
    })
    publicJwks.set(publicKey, jwk)
    // A failed export is tried again next time.
    jwk.catch(() => publicJwks.delete(publicKey))
  }
  return jwk
}

/** Options of {@link generateDpopKeyPair}. */
export interface GenerateDpopKeyPairOptions {
  /**
   * Default `false`: the private key cannot be exported, only used to sign (it survives in
   * IndexedDB as a `CryptoKey`). Set `true` only for a store that must serialise it, such as
   * one shared by processes (see {@link exportDpopKeyPair}).
   */
  extractable?: boolean
}

/**
 * Generate an ES256 (ECDSA P-256) key pair for DPoP. The private key is non-extractable by
 * default; the public key is always extractable (it goes in every proof).
 *
 * @example
 * const keyPair = await generateDpopKeyPair()
 * const proof = await createDpopProof(keyPair, { htm: 'GET', htu: 'https://api.example.com/me' })
 */
export async function generateDpopKeyPair(
  options: GenerateDpopKeyPairOptions = {},
): Promise<CryptoKeyPair> {
  const extractable = options?.extractable ?? false
  if (typeof extractable !== 'boolean') {
    throw new ReauthOptionsError('"extractable" must be a boolean')
  }
  return crypto.subtle.generateKey(ES256, extractable, ['sign', 'verify'])
}

/**
 * The RFC 7638 JWK SHA-256 thumbprint of a DPoP public key, base64url: the `jkt` of
 * RFC 9449 (`cnf.jkt` of bound tokens, the `dpop_jkt` authorization request parameter).
 *
 * @example
 * const jkt = await dpopThumbprint(keyPair.publicKey)
 * url.searchParams.set('dpop_jkt', jkt)
 */
export async function dpopThumbprint(publicKey: CryptoKey): Promise<string> {
  const { crv, kty, x, y } = await publicJwk(checkPublicKey(publicKey, 'publicKey'))
  // RFC 7638 §3.2: the required members only, in lexicographic order, no whitespace.
  return sha256(JSON.stringify({ crv, kty, x, y }))
}

/** What a proof is for: one send of one request. */
export interface DpopProofOptions {
  /** The request's HTTP method (`htm`), e.g. `'GET'`; upper-cased. */
  htm: string
  /** The request's URL (`htu`); its query and fragment are not part of the proof. */
  htu: string | URL
  /** The access token the request carries; its hash goes in `ath`. Omit at the token endpoint. */
  accessToken?: string | undefined
  /** The server's latest `DPoP-Nonce` for this origin, when it gave one. */
  nonce?: string | undefined
  /** The clock, ms since the epoch (default `Date.now()`); `iat` is in seconds. */
  now?: number | undefined
}

/**
 * The `htu` of a request URL as RFC 9449 §4.2 says: without query and fragment (and without
 * user info, which no server compares). Throws a `ReauthOptionsError` for a URL that is not
 * absolute `http(s)`.
 *
 * @example
 * dpopHtu('https://api.example.com/orders?page=2#top') // 'https://api.example.com/orders'
 */
export function dpopHtu(url: string | URL): string {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new ReauthOptionsError('"htu" must be an absolute URL')
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
    throw new ReauthOptionsError('"htu" must be an http(s) URL')
  }
  return `${parsed.origin}${parsed.pathname}`
}

/**
 * A DPoP proof (RFC 9449 §4.2) for one send: a compact JWS signed with the key pair's private
 * key, header `{ typ: 'dpop+jwt', alg: 'ES256', jwk }` (the public key: `kty`, `crv`, `x`,
 * `y` only), claims `jti` (random, unique), `htm`, `htu` (no query or fragment), `iat`
 * (seconds), `ath` (base64url SHA-256 of the access token) when a token is given and `nonce`
 * when one is. Make a new one for every send, a replay included.
 *
 * @example
 * const proof = await createDpopProof(keyPair, {
 *   htm: 'GET',
 *   htu: 'https://api.example.com/orders?page=2',
 *   accessToken: tokens.accessToken,
 *   nonce: nonces.get('https://api.example.com/orders'),
 * })
 * await fetch(url, { headers: { Authorization: `DPoP ${tokens.accessToken}`, DPoP: proof } })
 */
export async function createDpopProof(
  keyPair: CryptoKeyPair,
  options: DpopProofOptions,
): Promise<string> {
  const pair = checkKeyPair(keyPair)
  if (typeof options !== 'object' || options === null) {
    throw new ReauthOptionsError('the DPoP proof options must be an object')
  }
  const { htm, accessToken, nonce, now = Date.now() } = options
  if (typeof htm !== 'string' || !/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(htm)) {
    throw new ReauthOptionsError('"htm" must be an HTTP method')
  }
  const htu = dpopHtu(options.htu)
  if (accessToken !== undefined && (typeof accessToken !== 'string' || accessToken === '')) {
    throw new ReauthOptionsError('"accessToken" must be a non-empty string')
  }
  if (nonce !== undefined && (typeof nonce !== 'string' || !NONCE.test(nonce))) {
    throw new ReauthOptionsError('"nonce" must be a DPoP nonce (printable ASCII, no " or \\)')
  }
  if (typeof now !== 'number' || !Number.isFinite(now)) {
    throw new ReauthOptionsError('"now" must be a finite number (ms since the epoch)')
  }
  const header = { typ: 'dpop+jwt', alg: 'ES256', jwk: await publicJwk(pair.publicKey) }
  const claims: Record<string, string | number> = {
    jti: base64url(crypto.getRandomValues(new Uint8Array(16))),
    htm: htm.toUpperCase(),
    htu,
    iat: Math.floor(now / 1000),
  }
  if (accessToken !== undefined) claims.ath = await sha256(accessToken)
  if (nonce !== undefined) claims.nonce = nonce
  const input = `${base64url(utf8(JSON.stringify(header)))}.${base64url(utf8(JSON.stringify(claims)))}`
  // WebCrypto's ECDSA signature is r ‖ s, exactly the JWS ES256 encoding (RFC 7518 §3.4).
  const signature = await crypto.subtle.sign(SIGN, pair.privateKey, utf8(input))
  return `${input}.${base64url(new Uint8Array(signature))}`
}

/** Response headers as every client exposes them (`Headers`, axios, ky). */
export interface DpopNonceHeaders {
  get(name: string): string | null | undefined
}

/**
 * The latest `DPoP-Nonce` of each origin (RFC 9449 §8, §9), from {@link createDpopNonces}.
 * Nonces are per server, so they are kept per origin; the least recently used origin is
 * forgotten past the limit.
 */
export interface DpopNonces {
  /** The nonce to put in the next proof to this URL's origin, or `undefined`. */
  get(url: string | URL): string | undefined
  /** Remember the `DPoP-Nonce` of a response from this URL's origin, when it has a valid one. */
  remember(url: string | URL, headers: DpopNonceHeaders): void
}

/** Options of {@link createDpopNonces}. */
export interface DpopNoncesOptions {
  /** How many origins to remember, least recently used first out. Default 100. */
  maxOrigins?: number
}

function originOf(url: string | URL): string | undefined {
  try {
    const { origin } = new URL(url)
    return origin === 'null' ? undefined : origin
  } catch {
    return undefined
  }
}

/**
 * A small per-origin memory of DPoP nonces: read `DPoP-Nonce` from every response (token
 * endpoint and resource servers alike), put the origin's latest one in the next proof.
 *
 * @example
 * const nonces = createDpopNonces()
 * const response = await fetch(url, init)
 * nonces.remember(url, response.headers)
 * const proof = await createDpopProof(keyPair, { htm: 'GET', htu: url, nonce: nonces.get(url) })
 */
export function createDpopNonces(options: DpopNoncesOptions = {}): DpopNonces {
  const max = options?.maxOrigins ?? DEFAULT_NONCE_ORIGINS
  if (!Number.isInteger(max) || max < 1) {
    throw new ReauthOptionsError('"maxOrigins" must be a positive integer')
  }
  const nonces = new Map<string, string>()
  return {
    get(url) {
      const origin = originOf(url)
      const nonce = origin === undefined ? undefined : nonces.get(origin)
      if (origin !== undefined && nonce !== undefined) {
        // Most recently used last: the first key is the one to forget.
        nonces.delete(origin)
        nonces.set(origin, nonce)
      }
      return nonce
    },
    remember(url, headers) {
      const origin = originOf(url)
      let nonce: string | null | undefined
      try {
        nonce = headers?.get('dpop-nonce')
      } catch {
        return
      }
      if (origin === undefined || typeof nonce !== 'string') return
      nonce = nonce.trim()
      if (nonce.length > MAX_NONCE_LENGTH || !NONCE.test(nonce)) return
      nonces.delete(origin)
      nonces.set(origin, nonce)
      if (nonces.size > max) nonces.delete(nonces.keys().next().value as string)
    },
  }
}

/** A DPoP key pair as JWKs, from {@link exportDpopKeyPair}. The private one is a secret. */
export interface DpopKeyPairJwk {
  publicKey: JsonWebKey
  privateKey: JsonWebKey
}

/** Options of {@link importDpopKeyPair}. */
export interface ImportDpopKeyPairOptions {
  /** Whether the imported private key may be exported again. Default `false`. */
  extractable?: boolean
}

/**
 * Serialise a DPoP key pair as JWKs, for a store that crosses process boundaries (encrypt it at
 * rest, like the tokens). The private key must have been made extractable
 * (`generateDpopKeyPair({ extractable: true })`); otherwise a `ReauthOptionsError` says so.
 *
 * @example
 * const keyPair = await generateDpopKeyPair({ extractable: true })
 * await redis.set('dpop', await encrypt(JSON.stringify(await exportDpopKeyPair(keyPair))))
 */
export async function exportDpopKeyPair(keyPair: CryptoKeyPair): Promise<DpopKeyPairJwk> {
  const pair = checkKeyPair(keyPair)
  if (!pair.privateKey.extractable) {
    throw new ReauthOptionsError(
      'The DPoP private key is not extractable: generate it with { extractable: true } to export it',
    )
  }
  const [publicKey, privateKey] = await Promise.all([
    crypto.subtle.exportKey('jwk', pair.publicKey),
    crypto.subtle.exportKey('jwk', pair.privateKey),
  ])
  return { publicKey, privateKey }
}

function ecMembers(jwk: unknown): { x: string; y: string; d?: unknown } | undefined {
  if (typeof jwk !== 'object' || jwk === null) return undefined
  const { kty, crv, x, y, d } = jwk as Record<string, unknown>
  if (kty !== 'EC' || crv !== 'P-256' || typeof x !== 'string' || typeof y !== 'string') {
    return undefined
  }
  return { x, y, d }
}

/**
 * The inverse of {@link exportDpopKeyPair}: a `CryptoKeyPair` from its JWKs. The private key is
 * non-extractable unless `extractable: true`. Throws a `ReauthOptionsError` (which never
 * quotes the keys) when the JWKs are not a matching ES256 pair.
 *
 * @example
 * const keyPair = await importDpopKeyPair(JSON.parse(await decrypt(await redis.get('dpop'))))
 */
export async function importDpopKeyPair(
  jwks: DpopKeyPairJwk,
  options: ImportDpopKeyPairOptions = {},
): Promise<CryptoKeyPair> {
  const extractable = options?.extractable ?? false
  if (typeof extractable !== 'boolean') {
    throw new ReauthOptionsError('"extractable" must be a boolean')
  }
  const shape = (typeof jwks === 'object' && jwks !== null ? jwks : {}) as Partial<DpopKeyPairJwk>
  const pub = ecMembers(shape.publicKey)
  const priv = ecMembers(shape.privateKey)
  if (!pub) throw new ReauthOptionsError('"publicKey" must be an EC P-256 public JWK')
  if (!priv || typeof priv.d !== 'string') {
    throw new ReauthOptionsError('"privateKey" must be an EC P-256 private JWK')
  }
  if (pub.x !== priv.x || pub.y !== priv.y) {
    throw new ReauthOptionsError('"publicKey" and "privateKey" are not one key pair')
  }
  const base = { kty: 'EC', crv: 'P-256', x: pub.x, y: pub.y }
  try {
    const [publicKey, privateKey] = await Promise.all([
      // Public keys are always extractable: every proof carries it.
      crypto.subtle.importKey('jwk', base, ES256, true, ['verify']),
      crypto.subtle.importKey('jwk', { ...base, d: priv.d }, ES256, extractable, ['sign']),
    ])
    return { publicKey, privateKey }
  } catch {
    // WebCrypto's own message is dropped: nothing of the key may reach a log.
    throw new ReauthOptionsError('The DPoP key pair JWKs are not a valid ES256 key pair')
  }
}
