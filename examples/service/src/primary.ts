import cluster, { type Worker } from 'node:cluster'
import { SERVICE_CLIENT, startApi, startProvider } from '@reauth/testbed'
import { type ServiceConfig, toEnv, type WorkerReady, type WorkerReport } from './config.js'
import { exampleRedis } from './redis-server.js'

const WORKERS = 4
const BURSTS = 3
const BURST_SIZE = 50
/**
 * Access token lifetime in seconds (`REAUTH_TOKEN_TTL`, default 4). oidc-provider counts in
 * whole seconds, so a token may die up to 1 s before the local clock says; the engine's expiry
 * margin is a quarter of the lifetime, and on a loaded machine a request sent just inside the
 * 4 s token's margin can reach the API after its death: a 401, refreshed and replayed (so still
 * served), but one token request more. The examples test runs with 8 s.
 */
const TOKEN_TTL = Number(process.env.REAUTH_TOKEN_TTL ?? 4)

function once<T>(worker: Worker, type: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: { type?: string }) => {
      if (message.type !== type) return
      worker.off('message', onMessage)
      worker.off('exit', onExit)
      resolve(message as T)
    }
    const onExit = (code: number) =>
      reject(new Error(`worker ${worker.process.pid} exited (${code})`))
    worker.on('message', onMessage)
    worker.once('exit', onExit)
  })
}

/**
 * Start Redis, the provider and its API; fork the workers; send the bursts through the service;
 * print what happened. Returns the exit code: 0 when every request was served.
 */
export async function primary(): Promise<number> {
  const redis = await exampleRedis()
  const provider = await startProvider({ accessTokenTtl: TOKEN_TTL })
  const api = await startApi({ issuer: provider.issuer })
  const config: ServiceConfig = {
    issuer: provider.issuer,
    clientId: SERVICE_CLIENT.id,
    clientSecret: SERVICE_CLIENT.secret,
    api: api.origin,
    redisUrl: redis.url,
    // 0, not a port probed free beforehand: in between, a worker's outgoing connection (to
    // Redis, to the provider) may be given that very port, and the cluster's listen then fails
    // with EADDRINUSE. With 0 the primary binds a free port at the first listen and shares it.
    port: 0,
  }
  console.log(`redis: ${redis.describe}`)
  console.log(
    `provider: embedded oidc-provider at ${provider.issuer}, access tokens live ${TOKEN_TTL} s`,
  )

  const workers = Array.from({ length: WORKERS }, () => cluster.fork(toEnv(config)))
  const ready = await Promise.all(workers.map((worker) => once<WorkerReady>(worker, 'ready')))
  const port = ready[0]?.port
  if (port === undefined || ready.some((r) => r.port !== port)) {
    throw new Error(`the workers listen on different ports: ${ready.map((r) => r.port)}`)
  }
  console.log(`service: ${WORKERS} workers on http://127.0.0.1:${port}`)

  let failed = 0
  for (let burst = 1; burst <= BURSTS; burst++) {
    const results = await Promise.allSettled(
      Array.from({ length: BURST_SIZE }, async () => {
        const response = await fetch(`http://127.0.0.1:${port}/orders`)
        await response.arrayBuffer()
        return response.status
      }),
    )
    const ok = results.filter((r) => r.status === 'fulfilled' && r.value === 200).length
    failed += BURST_SIZE - ok
    console.log(
      `burst ${burst}: ${ok}/${BURST_SIZE} ok, token requests so far ${provider.counters.clientCredentialsGrants}`,
    )
    // Let the access token expire: the next burst needs a new one (one, for all the workers).
    if (burst < BURSTS)
      await new Promise((resolve) => setTimeout(resolve, (TOKEN_TTL + 0.5) * 1000))
  }

  const reports = await Promise.all(
    workers.map((worker) => {
      const report = once<WorkerReport>(worker, 'report')
      worker.send({ type: 'stop' })
      return report
    }),
  )
  console.table(
    reports.map(({ pid, handled, failed: workerFailed, grants }) => ({
      worker: pid,
      handled,
      failed: workerFailed,
      grants,
    })),
  )
  const grants = provider.counters.clientCredentialsGrants
  console.log(`token requests: ${grants} for ${BURSTS} token lifetimes across ${WORKERS} workers`)
  console.log(`api: ${api.counters.ok} ok, ${api.counters.unauthorized} unauthorized`)
  await api.stop()
  await provider.stop()
  await redis.stop()
  return failed === 0 ? 0 : 1
}
