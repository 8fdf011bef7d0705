/** What the primary hands each worker, through the environment. */
export interface ServiceConfig {
  /** The authorization server's issuer. */
  issuer: string
  /** The service's confidential client. */
  clientId: string
  clientSecret: string
  /** The protected API the handlers call. */
  api: string
  /** The Redis the workers share the token through. */
  redisUrl: string
  /**
   * Where the workers listen (the cluster shares the port). 0: the primary picks a free port at
   * the first worker's listen and every worker gets that same one (node:cluster's `listen(0)`).
   */
  port: number
}

const PREFIX = 'SERVICE_'

/** The environment variables of a config. */
export function toEnv(config: ServiceConfig): Record<string, string> {
  return Object.fromEntries(
    Object.entries(config).map(([name, value]) => [`${PREFIX}${name}`, String(value)]),
  )
}

/** The config a worker was started with. */
export function fromEnv(env: NodeJS.ProcessEnv = process.env): ServiceConfig {
  const read = (name: keyof ServiceConfig): string => {
    const value = env[`${PREFIX}${name}`]
    if (!value) throw new Error(`${PREFIX}${name} is not set: start the service with src/main.ts`)
    return value
  }
  return {
    issuer: read('issuer'),
    clientId: read('clientId'),
    clientSecret: read('clientSecret'),
    api: read('api'),
    redisUrl: read('redisUrl'),
    port: Number(read('port')),
  }
}

/** What a worker tells the primary once it listens. */
export interface WorkerReady {
  type: 'ready'
  /** The port it listens on: the same for every worker. */
  port: number
}

/** What a worker tells the primary when it stops. */
export interface WorkerReport {
  type: 'report'
  pid: number
  handled: number
  failed: number
  /** Grants this worker's engine made (the others adopted the token through Redis). */
  grants: number
}
