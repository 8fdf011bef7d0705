import { inspect } from 'node:util'
import { describe, expect, it } from 'vitest'
import { dpopChallenge } from './auth-error.js'
import {
  createDpopNonces,
  createDpopProof,
  dpopHtu,
  dpopThumbprint,
  exportDpopKeyPair,
  generateDpopKeyPair,
  importDpopKeyPair,
} from './dpop.js'
import { createEngine } from './engine.js'
import { isReauthOptionsError, ReauthOptionsError } from './errors.js'
import type { EngineOptions } from './options.js'

const ES256 = { name: 'ECDSA', namedCurve: 'P-256' } as const

/** RFC 9449 §4.1 (Figure 2) public key, and its thumbprint from §6.1 (Figure 9). */
const RFC_JWK = {
  kty: 'EC',
  crv: 'P-256',
  x: 'l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs',
  y: '9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA',
}
const RFC_JKT = '0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I'
/** RFC 9449 §7.1 (Figures 12 and 13): an access token and its `ath`. */
const RFC_TOKEN = 'Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU'
const RFC_ATH = 'fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo'

function fromBase64url(text: string): Uint8Array<ArrayBuffer> {
  const binary = atob(text.replace(/-/g, '+').replace(/_/g, '/'))
  return Uint8Array.from(binary, (c) => c.charCodeAt(0))
}

function decode(proof: string) {
  const [header = '', claims = '', signature = ''] = proof.split('.')
  const json = (part: string) => JSON.parse(new TextDecoder().decode(fromBase64url(part)))
  return {
    header: json(header) as Record<string, unknown>,
    claims: json(claims) as Record<string, unknown>,
    input: new TextEncoder().encode(`${header}.${claims}`),
    signature: fromBase64url(signature),
  }
}

/** Verify a proof as a server would: with the key in its own `jwk` header. */
async function verify(proof: string): Promise<boolean> {
  const { header, input, signature } = decode(proof)
  const key = await crypto.subtle.importKey('jwk', header.jwk as JsonWebKey, ES256, true, [
    'verify',
  ])
  return crypto.subtle.verify({ name: 'ECDSA', hash: 'SHA-256' }, key, signature, input)
}

async function rejection(promise: Promise<unknown> | (() => unknown)): Promise<unknown> {
  try {
    await (typeof promise === 'function' ? promise() : promise)
  } catch (error) {
    return error
  }
  throw new Error('expected a rejection')
}

describe('generateDpopKeyPair', () => {
  it('makes an ES256 pair whose private key cannot be exported by default', async () => {
    const pair = await generateDpopKeyPair()
    expect(pair.privateKey.algorithm).toMatchObject(ES256)
    expect(pair.privateKey.extractable).toBe(false)
    expect(pair.publicKey.extractable).toBe(true)
    await expect(crypto.subtle.exportKey('jwk', pair.privateKey)).rejects.toThrow()
    const error = await rejection(exportDpopKeyPair(pair))
    expect(error).toBeInstanceOf(ReauthOptionsError)
    expect((error as Error).message).toMatch(/not extractable/)
  })

  it('makes an extractable pair on request', async () => {
    const pair = await generateDpopKeyPair({ extractable: true })
    expect(pair.privateKey.extractable).toBe(true)
    const jwks = await exportDpopKeyPair(pair)
    expect(jwks.privateKey).toMatchObject({ kty: 'EC', crv: 'P-256' })
    expect(typeof jwks.privateKey.d).toBe('string')
    expect(jwks.publicKey.d).toBeUndefined()
  })
})

describe('dpopThumbprint', () => {
  it('is the RFC 7638 thumbprint: the RFC 9449 example key gives the RFC 9449 jkt', async () => {
    const key = await crypto.subtle.importKey('jwk', RFC_JWK, ES256, true, ['verify'])
    expect(await dpopThumbprint(key)).toBe(RFC_JKT)
  })

  it('rejects anything but an ES256 public key, with a typed error', async () => {
    const pair = await generateDpopKeyPair()
    const error = await rejection(dpopThumbprint(pair.privateKey))
    expect(isReauthOptionsError(error)).toBe(true)
    expect((error as Error).message).toBe(
      '"publicKey" must be an ES256 (ECDSA P-256) public CryptoKey',
    )
  })
})

describe('createDpopProof', () => {
  it('signs a proof a server verifies with the key in its header, with the RFC 9449 claims', async () => {
    const pair = await generateDpopKeyPair()
    const now = Date.UTC(2030, 0, 1, 0, 0, 0, 999)
    const proof = await createDpopProof(pair, {
      htm: 'post',
      htu: 'https://api.example.com/orders/7?page=2&x=y#top',
      accessToken: RFC_TOKEN,
      nonce: 'eyJ7S_zG.eyJH0-Z.HX4w-7v',
      now,
    })
    expect(await verify(proof)).toBe(true)
    const { header, claims } = decode(proof)
    const { kty, crv, x, y } = await crypto.subtle.exportKey('jwk', pair.publicKey)
    // The public key only: kty, crv, x, y; never d, key_ops or ext.
    expect(header).toEqual({ typ: 'dpop+jwt', alg: 'ES256', jwk: { kty, crv, x, y } })
    expect(claims).toEqual({
      jti: expect.stringMatching(/^[A-Za-z0-9_-]{22,}$/),
      htm: 'POST',
      htu: 'https://api.example.com/orders/7',
      iat: Math.floor(now / 1000),
      ath: RFC_ATH,
      nonce: 'eyJ7S_zG.eyJH0-Z.HX4w-7v',
    })
    // The thumbprint of the header's key is the key pair's jkt.
    const headerKey = await crypto.subtle.importKey('jwk', header.jwk as JsonWebKey, ES256, true, [
      'verify',
    ])
    expect(await dpopThumbprint(headerKey)).toBe(await dpopThumbprint(pair.publicKey))
  })

  it('a proof signed by another key does not verify against this key', async () => {
    const [a, b] = await Promise.all([generateDpopKeyPair(), generateDpopKeyPair()])
    const proof = decode(await createDpopProof(a, { htm: 'GET', htu: 'https://a.test/' }))
    const valid = await crypto.subtle.verify(
      { name: 'ECDSA', hash: 'SHA-256' },
      b.publicKey,
      proof.signature,
      proof.input,
    )
    expect(valid).toBe(false)
  })

  it('has no ath or nonce when none is given (a token request)', async () => {
    const pair = await generateDpopKeyPair()
    const { claims } = decode(
      await createDpopProof(pair, { htm: 'POST', htu: 'https://as.example.com/token' }),
    )
    expect(Object.keys(claims).sort()).toEqual(['htm', 'htu', 'iat', 'jti'])
  })

  it('gives every proof a new jti, for the same request', async () => {
    const pair = await generateDpopKeyPair()
    const proofs = await Promise.all(
      Array.from({ length: 50 }, () =>
        createDpopProof(pair, { htm: 'GET', htu: 'https://a.test/x', now: 0 }),
      ),
    )
    expect(new Set(proofs.map((p) => decode(p).claims.jti)).size).toBe(50)
  })

  it.each([
    ['https://api.example.com', 'https://api.example.com/'],
    ['https://API.Example.com:443/a/b?q=1', 'https://api.example.com/a/b'],
    ['http://127.0.0.1:8080/p#frag', 'http://127.0.0.1:8080/p'],
    ['https://user:pass@api.example.com/p', 'https://api.example.com/p'],
    [new URL('https://api.example.com/a%20b?x'), 'https://api.example.com/a%20b'],
  ])('htu of %s is %s', async (input, htu) => {
    expect(dpopHtu(input)).toBe(htu)
    const pair = await generateDpopKeyPair()
    expect(decode(await createDpopProof(pair, { htm: 'GET', htu: input })).claims.htu).toBe(htu)
  })

  it.each([
    [{ htm: 'GET', htu: '/relative' }, '"htu" must be an absolute URL'],
    [{ htm: 'GET', htu: 'ftp://a.test/' }, '"htu" must be an http(s) URL'],
    [{ htm: 'GE T', htu: 'https://a.test/' }, '"htm" must be an HTTP method'],
    [
      { htm: 'GET', htu: 'https://a.test/', accessToken: '' },
      '"accessToken" must be a non-empty string',
    ],
    [{ htm: 'GET', htu: 'https://a.test/', nonce: 'a"b' }, '"nonce" must be a DPoP nonce'],
    [{ htm: 'GET', htu: 'https://a.test/', now: Number.NaN }, '"now" must be a finite number'],
  ])('rejects bad options with a typed error: %j', async (options, message) => {
    const pair = await generateDpopKeyPair()
    const error = await rejection(createDpopProof(pair, options))
    expect(error).toBeInstanceOf(ReauthOptionsError)
    expect((error as ReauthOptionsError).code).toBe('INVALID_OPTION')
    expect((error as Error).message).toContain(message)
  })

  it('rejects a key pair that is not ES256', async () => {
    const rsa = await crypto.subtle.generateKey(
      {
        name: 'RSASSA-PKCS1-v1_5',
        modulusLength: 2048,
        publicExponent: new Uint8Array([1, 0, 1]),
        hash: 'SHA-256',
      },
      false,
      ['sign', 'verify'],
    )
    const error = await rejection(createDpopProof(rsa, { htm: 'GET', htu: 'https://a.test/' }))
    expect(error).toBeInstanceOf(ReauthOptionsError)
    expect(
      await rejection(createDpopProof({} as CryptoKeyPair, { htm: 'GET', htu: 'https://a.test/' })),
    ).toBeInstanceOf(ReauthOptionsError)
  })
})

describe('createDpopNonces', () => {
  const headers = (nonce: string | null) =>
    new Headers(nonce === null ? {} : { 'DPoP-Nonce': nonce })

  it('remembers the latest nonce per origin', () => {
    const nonces = createDpopNonces()
    expect(nonces.get('https://a.test/x')).toBeUndefined()
    nonces.remember('https://a.test/token', headers('n1'))
    nonces.remember('https://b.test/api', headers('m1'))
    expect(nonces.get('https://a.test/other?q')).toBe('n1')
    expect(nonces.get(new URL('https://b.test/'))).toBe('m1')
    nonces.remember('https://a.test/api', headers('n2'))
    expect(nonces.get('https://a.test/')).toBe('n2')
    // A response without the header keeps the last one.
    nonces.remember('https://a.test/api', headers(null))
    expect(nonces.get('https://a.test/')).toBe('n2')
    expect(nonces.get('http://a.test/')).toBeUndefined()
  })

  it('ignores values that are not nonces and URLs without an origin', () => {
    const nonces = createDpopNonces()
    nonces.remember('https://a.test/', headers('has space'))
    nonces.remember('https://a.test/', headers('x'.repeat(1025)))
    nonces.remember('https://a.test/', { get: () => undefined })
    nonces.remember('not a url', headers('n1'))
    nonces.remember('https://a.test/', {
      get: () => {
        throw new Error('no headers')
      },
    })
    expect(nonces.get('https://a.test/')).toBeUndefined()
  })

  it('is bounded: the least recently used origin is forgotten', () => {
    const nonces = createDpopNonces({ maxOrigins: 2 })
    nonces.remember('https://a.test/', headers('a'))
    nonces.remember('https://b.test/', headers('b'))
    expect(nonces.get('https://a.test/')).toBe('a') // a is now the most recent
    nonces.remember('https://c.test/', headers('c'))
    expect(nonces.get('https://b.test/')).toBeUndefined()
    expect(nonces.get('https://a.test/')).toBe('a')
    expect(nonces.get('https://c.test/')).toBe('c')
    expect(() => createDpopNonces({ maxOrigins: 0 })).toThrow(ReauthOptionsError)
  })
})

describe('dpopChallenge', () => {
  it.each([
    [
      'DPoP error="use_dpop_nonce", error_description="Resource server requires nonce"',
      'use_dpop_nonce',
    ],
    ['DPoP algs="ES256", error="invalid_token"', 'invalid_token'],
    ['Bearer realm="x", DPoP algs="ES256" error="use_dpop_nonce"', 'use_dpop_nonce'],
    ['dpop error=use_dpop_nonce', 'use_dpop_nonce'],
    ['DPoP error="insufficient_scope"', undefined],
    ['Bearer error="use_dpop_nonce"', undefined],
    ['DPoP algs="ES256"', undefined],
    [null, undefined],
  ])('%s → %s', (header, expected) => {
    expect(dpopChallenge(header)).toBe(expected)
  })
})

describe('exportDpopKeyPair / importDpopKeyPair', () => {
  it('round-trips a pair: the imported key signs proofs the original public key verifies', async () => {
    const pair = await generateDpopKeyPair({ extractable: true })
    const jwks = JSON.parse(JSON.stringify(await exportDpopKeyPair(pair)))
    const imported = await importDpopKeyPair(jwks)
    expect(imported.privateKey.extractable).toBe(false)
    expect(await dpopThumbprint(imported.publicKey)).toBe(await dpopThumbprint(pair.publicKey))
    const proof = decode(await createDpopProof(imported, { htm: 'GET', htu: 'https://a.test/' }))
    const valid = await crypto.subtle.verify(
      { name: 'ECDSA', hash: 'SHA-256' },
      pair.publicKey,
      proof.signature,
      proof.input,
    )
    expect(valid).toBe(true)
    const again = await importDpopKeyPair(jwks, { extractable: true })
    expect((await exportDpopKeyPair(again)).privateKey.d).toBe(jwks.privateKey.d)
  })

  it('rejects JWKs that are not one ES256 pair, and no message or cause holds key material', async () => {
    const [a, b] = await Promise.all([
      generateDpopKeyPair({ extractable: true }),
      generateDpopKeyPair({ extractable: true }),
    ])
    const ja = await exportDpopKeyPair(a)
    const jb = await exportDpopKeyPair(b)
    const cases: Array<[unknown, string]> = [
      [{ publicKey: ja.publicKey, privateKey: jb.privateKey }, 'are not one key pair'],
      [{ publicKey: ja.publicKey, privateKey: ja.publicKey }, '"privateKey" must be'],
      [{ privateKey: ja.privateKey }, '"publicKey" must be'],
      [
        { publicKey: ja.publicKey, privateKey: { ...ja.privateKey, d: `${ja.privateKey.d}AA` } },
        'not a valid ES256 key pair',
      ],
      [null, '"publicKey" must be'],
    ]
    for (const [jwks, message] of cases) {
      const error = await rejection(importDpopKeyPair(jwks as never))
      expect(error).toBeInstanceOf(ReauthOptionsError)
      expect((error as Error).message).toContain(message)
      const printed = inspect(error, { depth: 10 })
      for (const secret of [ja.privateKey.d, jb.privateKey.d, ja.publicKey.x]) {
        expect(printed).not.toContain(secret)
      }
    }
  })
})

describe('createEngine({ dpop })', () => {
  /** The key pair the engine hands to its first acquire. */
  async function keyOf(dpop: EngineOptions['dpop']): Promise<CryptoKeyPair | undefined> {
    let given: CryptoKeyPair | undefined
    const engine = createEngine({
      dpop,
      acquire: async (context) => {
        given = context.dpop
        return { accessToken: 'at', tokenType: given ? 'DPoP' : 'Bearer' }
      },
    })
    // the first getToken acquires
    const stored = await engine.getToken()
    expect(stored?.dpopKey).toBe(given)
    engine.dispose()
    return given
  }

  it('true and {} make a non-extractable key; { extractable: true } an extractable one; false none', async () => {
    expect((await keyOf(true))?.privateKey.extractable).toBe(false)
    expect((await keyOf({}))?.privateKey.extractable).toBe(false)
    expect((await keyOf({ extractable: false }))?.privateKey.extractable).toBe(false)
    const shared = await keyOf({ extractable: true })
    expect(shared?.privateKey.extractable).toBe(true)
    // what a store crossing processes needs: the pair exports
    expect((await exportDpopKeyPair(shared as CryptoKeyPair)).privateKey.d).toEqual(
      expect.any(String),
    )
    expect(await keyOf(false)).toBeUndefined()
    expect(await keyOf(undefined)).toBeUndefined()
  })

  it('validates the option', () => {
    for (const dpop of ['yes', null, [], { extractable: 'yes' }, 1]) {
      expect(() =>
        createEngine({
          dpop: dpop as never,
          refresh: async () => ({ accessToken: 'a', tokenType: 'Bearer' }),
        }),
      ).toThrow(/"dpop" must be a boolean or \{ extractable\?: boolean \}/)
    }
  })
})
