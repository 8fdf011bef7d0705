import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createClient } from 'redis'

/** A redis-server this test started on 127.0.0.1, without persistence. */
export interface RunningRedis {
  readonly port: number
  readonly url: string
  /** Stop the server. `keepData`: SAVE first, so `start()` loads the same data (a restart). */
  stop(options?: { keepData?: boolean }): Promise<void>
  /** Start it again on the same port. */
  start(): Promise<void>
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0))
    })
  })
}

/** PING until it answers, at most `timeout` ms. */
async function waitForPing(url: string, timeout: number): Promise<void> {
  const deadline = Date.now() + timeout
  let last: unknown
  while (Date.now() < deadline) {
    const client = createClient({ url, socket: { reconnectStrategy: false, connectTimeout: 500 } })
    client.on('error', () => {})
    try {
      await client.connect()
      await client.ping()
      await client.close()
      return
    } catch (error) {
      last = error
      // A client whose connect failed may already be closed: destroying it again throws.
      if (client.isOpen) client.destroy()
    }
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  throw new Error(`redis-server on ${url} did not answer PING within ${timeout} ms`, {
    cause: last,
  })
}

/**
 * Start `redis-server` on a free loopback port with no persistence (`--save ''`,
 * `--appendonly no`), and wait (bounded) until it answers PING.
 */
export async function startRedis(): Promise<RunningRedis> {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'reauth-redis-'))
  const url = `redis://127.0.0.1:${port}`
  let child: ChildProcess | undefined

  async function start(): Promise<void> {
    const spawned = spawn(
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
    child = spawned
    const exited = new Promise<never>((_, reject) =>
      spawned.once('exit', (code) => reject(new Error(`redis-server exited (${code})`))),
    )
    exited.catch(() => {})
    await Promise.race([waitForPing(url, 10_000), exited])
  }

  async function stop(options: { keepData?: boolean } = {}): Promise<void> {
    const running = child
    child = undefined
    if (!running || running.exitCode !== null) return
    if (options.keepData) {
      const client = createClient({ url, socket: { reconnectStrategy: false } })
      client.on('error', () => {})
      await client.connect()
      await client.sendCommand(['SAVE'])
      await client.close()
    }
    const exited = new Promise<void>((resolve) => running.once('exit', () => resolve()))
    running.kill('SIGTERM')
    const timer = setTimeout(() => running.kill('SIGKILL'), 5_000)
    await exited
    clearTimeout(timer)
  }

  await start()
  return {
    port,
    url,
    start,
    async stop(options) {
      await stop(options)
      if (!options?.keepData) rmSync(dir, { recursive: true, force: true })
    },
  }
}
