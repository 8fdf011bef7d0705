import { isReauthError, ReauthError } from '@reauth/core'

/** Why a {@link TabSyncError} was thrown. */
export type TabSyncErrorCode = 'LOCK_TIMEOUT' | 'CATCH_UP_TIMEOUT'

/**
 * Tabs could not agree in time: the Web Lock was not granted within `acquireTimeout`
 * (`LOCK_TIMEOUT`), or tokens another tab stored did not reach this one within
 * `catchUpTimeout` (`CATCH_UP_TIMEOUT`). The engine turns it into a retryable `RefreshError`
 * with this error as `cause`.
 *
 * @example
 * if (isRefreshError(error) && isTabSyncError(error.cause)) console.log(error.cause.code)
 */
export class TabSyncError extends ReauthError<TabSyncErrorCode> {
  override name = 'TabSyncError' as const
}

/** True for a {@link TabSyncError}, also across realms. @example isTabSyncError(error.cause) */
export function isTabSyncError(value: unknown): value is TabSyncError {
  return isReauthError(value) && value.name === 'TabSyncError'
}

/** Why a {@link KeyStoreError} was thrown. */
export type KeyStoreErrorCode = 'KEY_STORE_FAILED' | 'KEY_INVALID'

/**
 * A store could not keep the DPoP key pair of a token set: IndexedDB failed to open, write or
 * read (`KEY_STORE_FAILED`: blocked, quota, private mode), or the pair has no usable ES256
 * public key (`KEY_INVALID`). The message never contains key material; the IndexedDB error
 * is the `cause`. During a refresh the engine turns it into a retryable `RefreshError`.
 *
 * @example
 * if (isKeyStoreError(error)) console.log(error.code)
 */
export class KeyStoreError extends ReauthError<KeyStoreErrorCode> {
  override name = 'KeyStoreError' as const
}

/** True for a {@link KeyStoreError}, also across realms. @example isKeyStoreError(error) */
export function isKeyStoreError(value: unknown): value is KeyStoreError {
  return isReauthError(value) && value.name === 'KeyStoreError'
}
