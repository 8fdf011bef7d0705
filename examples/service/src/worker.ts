import { createServer } from 'node:http'
import { createEngine } from '@reauth/core'
import { createFetch } from '@reauth/fetch'
import { clientCredentials } from '@reauth/oauth'
import { createRedisSession } from '@reauth/redis'
import { createClient } from 'redis'
import { fromEnv, type WorkerReady, type WorkerReport } from './config.js'

/**
 * One worker of the service: an HTTP server whose `GET /orders` handler calls the protected
 * API through a reauth fetch. The engine has no tokens and no refresh function: it acquires
 * with client credentials on first use and whenever the token expires, and keeps the token in
 * Redis under one key with one lock, so the four workers make one token request per expiry.
 */
export async function worker(): Promise<void> {
  const config = fromEnv()
  const redis = await createClient({ url: config.redisUrl })
    .on('error', (error: Error) => console.error(`[worker ${process.pid}] redis:`, error.message))
    .connect()

  // The whole of reauth in this service: an engine that acquires, shared through Redis.
  const engine = createEngine({
    acquire: clientCredentials({
      issuer: config.issuer,
      clientId: config.clientId,
      clientSecret: config.clientSecret,
      allowInsecureRequests: true, // the embedded provider is http on loopback
    }),
    ...createRedisSession(redis, { key: 'reauth:service:orders-client' }),
  })
  const api = createFetch(engine, { origins: [config.api] })

  let handled = 0
  let failed = 0
  const server = createServer(async (req, res) => {
    if (req.method !== 'GET' || req.url !== '/orders') {
      res.writeHead(404).end()
      return
    }
    try {
      const upstream = await api(`${config.api}/orders`, { signal: AbortSignal.timeout(5_000) })
      const body = await upstream.text()
      if (upstream.ok) handled++
      else failed++
      res.writeHead(upstream.ok ? 200 : 502, { 'content-type': 'application/json' }).end(body)
    } catch (error) {
      failed++
      // reauth's errors never carry a token: safe to log.
      console.error(`[worker ${process.pid}]`, error instanceof Error ? error.message : error)
      res.writeHead(502, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ error: 'upstream_unavailable' }))
    }
  })
  await new Promise<void>((resolve) => server.listen(config.port, '127.0.0.1', resolve))
  const address = server.address()
  const ready: WorkerReady = {
    type: 'ready',
    port: typeof address === 'object' && address ? address.port : config.port,
  }
  process.send?.(ready)

  process.on('message', async (message: { type?: string }) => {
    if (message.type !== 'stop') return
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
    const report: WorkerReport = {
      type: 'report',
      pid: process.pid,
      handled,
      failed,
      grants: engine.stats().grants,
    }
    engine.dispose()
    await redis.close()
    process.send?.(report, () => process.exit(0))
  })
}
