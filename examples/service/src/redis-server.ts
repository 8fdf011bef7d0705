import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createClient } from 'redis'

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0))
    })
  })
}

/** A Redis for the example: yours (`REDIS_URL`), or a redis-server started on loopback. */
export interface ExampleRedis {
  url: string
  describe: string
  stop(): Promise<void>
}

async function answersPing(url: string): Promise<boolean> {
  const client = createClient({ url, socket: { reconnectStrategy: false, connectTimeout: 500 } })
  client.on('error', () => {})
  try {
    await client.connect()
    await client.ping()
    await client.close()
    return true
  } catch {
    if (client.isOpen) client.destroy()
    return false
  }
}

/**
 * `REDIS_URL` when set; otherwise start `redis-server` (it must be on the PATH) on a free
 * loopback port without persistence, and wait (at most 10 s) until it answers PING.
 */
export async function exampleRedis(): Promise<ExampleRedis> {
  if (process.env.REDIS_URL) {
    return { url: process.env.REDIS_URL, describe: 'REDIS_URL', stop: async () => {} }
  }
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'reauth-service-'))
  const child = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
    ],
    { stdio: 'ignore' },
  )
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const failed = new Promise<never>((_, reject) =>
    child.once('error', (error) =>
      reject(
        new Error(`could not start redis-server (install it, or set REDIS_URL): ${error.message}`),
      ),
    ),
  )
  const url = `redis://127.0.0.1:${port}`
  const deadline = Date.now() + 10_000
  while (!(await Promise.race([answersPing(url), failed]))) {
    if (Date.now() > deadline) throw new Error(`redis-server on ${url} did not answer within 10 s`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return {
    url,
    describe: `redis-server on ${url}`,
    async stop() {
      child.kill('SIGTERM')
      await exited
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
