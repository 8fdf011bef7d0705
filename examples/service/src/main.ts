/**
 * A Node HTTP service whose handlers call a protected API with the client credentials grant,
 * run as four `node:cluster` workers that share one token through Redis (@reauth/redis store
 * and lock): one token request per expiry across all of them, whichever worker needs it first.
 *
 * The primary starts what the service needs — a redis-server on loopback (or yours, REDIS_URL),
 * the embedded oidc-provider and its protected API (access tokens live 4 s) — forks the
 * workers, then plays the service's callers: three bursts of 50 requests, each after the token
 * expired, and checks every one was served.
 */
import cluster from 'node:cluster'
import { primary } from './primary.js'
import { worker } from './worker.js'

if (cluster.isPrimary) {
  process.exitCode = await primary()
} else {
  await worker()
}
