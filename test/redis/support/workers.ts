import { type ChildProcess, fork } from 'node:child_process'
import { createRequire } from 'node:module'
import { fileURLToPath, pathToFileURL } from 'node:url'
import type { EngineStats } from '@reauth/core'
import type { FromWorker, Outcome, ToWorker, WorkerSetup } from './protocol.js'

type Message = ToWorker extends infer M ? (M extends { id: number } ? Omit<M, 'id'> : never) : never
type Reply = Extract<FromWorker, { type: 'reply' }>

const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href
const script = fileURLToPath(new URL('./worker.ts', import.meta.url))

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms)
    }),
  ]).finally(() => clearTimeout(timer))
}

/** A worker process (`tsx --conditions=source worker.ts`) driven over IPC; every wait is bounded. */
export class Worker {
  readonly child: ChildProcess
  readonly #pending = new Map<number, (reply: Reply) => void>()
  readonly #events: FromWorker[] = []
  readonly #waiting = new Set<() => void>()
  readonly exited: Promise<void>
  #id = 0

  constructor() {
    this.child = fork(script, [], {
      execArgv: ['--import', tsx, '--conditions=source'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    this.exited = new Promise((resolve) => this.child.once('exit', () => resolve()))
    this.child.on('message', (raw) => {
      const message = raw as FromWorker
      if (message.type === 'reply') {
        this.#pending.get(message.id)?.(message)
        this.#pending.delete(message.id)
        return
      }
      this.#events.push(message)
      for (const wake of [...this.#waiting]) wake()
    })
  }

  /** Wait (bounded) for an unsolicited message of `type`, and take it. */
  next(type: Exclude<FromWorker['type'], 'reply'>, ms = 15_000): Promise<void> {
    const take = () => {
      const index = this.#events.findIndex((m) => m.type === type)
      if (index < 0) return false
      this.#events.splice(index, 1)
      return true
    }
    if (take()) return Promise.resolve()
    let wake!: () => void
    return within(
      new Promise<void>((resolve) => {
        wake = () => {
          if (take()) resolve()
        }
        this.#waiting.add(wake)
      }),
      ms,
      `worker ${this.child.pid} "${type}"`,
    ).finally(() => this.#waiting.delete(wake))
  }

  call(message: Message, ms = 15_000): Promise<Reply> {
    const id = ++this.#id
    const reply = new Promise<Reply>((resolve) => this.#pending.set(id, resolve))
    this.child.send({ ...message, id } as ToWorker)
    return within(reply, ms, `worker ${this.child.pid} "${message.type}"`)
  }

  async setup(setup: WorkerSetup): Promise<void> {
    const reply = await this.call({ type: 'setup', setup })
    if (reply.outcomes) throw new Error(`worker setup failed: ${JSON.stringify(reply.outcomes)}`)
  }

  async burst(size: number, ms = 20_000): Promise<Outcome[]> {
    return (await this.call({ type: 'burst', size }, ms)).outcomes ?? []
  }

  async report(): Promise<{ stats: EngineStats | undefined; texts: string[] }> {
    const reply = await this.call({ type: 'report' })
    return { stats: reply.stats, texts: reply.texts ?? [] }
  }

  /** SIGKILL, and wait until it is gone. */
  async kill(): Promise<void> {
    this.child.kill('SIGKILL')
    await within(this.exited, 5_000, 'SIGKILL')
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return
    this.child.disconnect()
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 3_000)
    await this.exited
    clearTimeout(timer)
  }
}

/** Start `count` workers and wait (bounded) until each is up. */
export async function startWorkers(count: number): Promise<Worker[]> {
  const workers = Array.from({ length: count }, () => new Worker())
  await Promise.all(workers.map((w) => w.next('up', 30_000)))
  return workers
}
