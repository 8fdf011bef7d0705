import { ReauthOptionsError } from '@reauth/core'
import * as oauth from 'oauth4webapi'

/**
 * One oauth4webapi DPoP handle per key pair, shared by the sign-in and every refresh: it keeps
 * the nonce each server last gave (per origin), so only the first request to a server that
 * requires nonces pays the `use_dpop_nonce` round trip.
 */
const handles = new WeakMap<CryptoKeyPair, oauth.DPoPHandle>()

/** The DPoP handle of a key pair. Throws a `ReauthOptionsError` for a pair it cannot sign with. */
export function dpopHandle(keyPair: CryptoKeyPair): oauth.DPoPHandle {
  let handle = handles.get(keyPair)
  if (!handle) {
    try {
      handle = oauth.DPoP({}, keyPair)
    } catch {
      throw new ReauthOptionsError(
        '"dpop" must be a CryptoKeyPair oauth4webapi can sign DPoP proofs with (ES256 by default) and an extractable public key',
      )
    }
    handles.set(keyPair, handle)
  }
  return handle
}

/** `{ DPoP: handle }` for oauth4webapi's request options, or nothing without a key pair. */
export function dpopOption(keyPair: CryptoKeyPair | undefined): { DPoP?: oauth.DPoPHandle } {
  return keyPair === undefined ? {} : { DPoP: dpopHandle(keyPair) }
}

/**
 * Send a token request, and once more when the server answered `use_dpop_nonce` (RFC 9449 §8):
 * the handle has remembered the `DPoP-Nonce` of that answer and puts it in the new proof. The
 * first answer is not a failure, and the server processed nothing (the refresh token was not
 * spent). A second `use_dpop_nonce` is thrown, as any error.
 */
export async function withDpopNonceRetry<T>(
  keyPair: CryptoKeyPair | undefined,
  send: () => Promise<T>,
): Promise<T> {
  try {
    return await send()
  } catch (error) {
    if (keyPair === undefined || !oauth.isDPoPNonceError(error)) throw error
    return send()
  }
}
