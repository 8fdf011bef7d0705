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
