import { isReauthError, ReauthError } from '@reauth/core'

/** Why a {@link RedisLockError} was thrown. */
export type RedisLockErrorCode = 'LOCK_TIMEOUT' | 'LOCK_UNAVAILABLE'

/**
 * The Redis lock could not be taken: another process held it past `waitTimeout`
 * (`LOCK_TIMEOUT`), or Redis did not answer (`LOCK_UNAVAILABLE`). The engine turns it into
 * a retryable `RefreshError` with this error as `cause`, so callers see core's typed errors.
 *
 * @example
 * import { isRefreshError } from '@reauth/core'
 * import { isRedisLockError } from '@reauth/redis'
 *
 * catch (error) {
 *   if (isRefreshError(error) && isRedisLockError(error.cause)) console.log(error.cause.code)
 * }
 */
export class RedisLockError extends ReauthError<RedisLockErrorCode> {
  override name = 'RedisLockError' as const
  /** The Redis key of the lock. */
  readonly key: string

  constructor(
    code: RedisLockErrorCode,
    key: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options?.cause === undefined ? {} : { cause: options.cause })
    this.key = key
  }
}

/**
 * True for a {@link RedisLockError}, also across realms and duplicated packages.
 *
 * @example
 * if (isRefreshError(error) && isRedisLockError(error.cause)) retryLater()
 */
export function isRedisLockError(value: unknown): value is RedisLockError {
  return isReauthError(value) && value.name === 'RedisLockError'
}
