import { createRequire } from 'node:module'
import type { RedisClientLike } from '@reauth/redis'
import { createClient } from 'redis'
import { createClient as createClient6 } from 'redis6'

/** The node-redis majors `@reauth/redis` supports (peer range `^5.0.0 || ^6.0.0`). */
type CreateClient = typeof createClient

// Each major's client must fit what the store and the lock use; checked by tsc, not at run time.
const fits5: ReturnType<typeof createClient> extends RedisClientLike ? true : false = true
const fits6: ReturnType<typeof createClient6> extends RedisClientLike ? true : false = true
void fits5
void fits6

/**
 * One entry per supported node-redis major, for `describe.each`: the same store and lock tests
 * run on a v5 and on a v6 client. The v6 factory is typed as v5's: the tests use only the
 * methods both majors share (connect, hGet/hSet, sendCommand, duplicate, destroy).
 */
export const redisClients: ReadonlyArray<{
  major: string
  /** The installed version, so a test can prove which major it ran. */
  version: string
  createClient: CreateClient
}> = [
  { major: 'node-redis 5', version: versionOf('redis'), createClient },
  {
    major: 'node-redis 6',
    version: versionOf('redis6'),
    createClient: createClient6 as unknown as CreateClient,
  },
]

function versionOf(name: string): string {
  return (createRequire(import.meta.url)(`${name}/package.json`) as { version: string }).version
}
