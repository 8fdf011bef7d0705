import type { EngineStats } from '@reauth/core'

/** How a worker refreshes: the test support's plain grant, or @reauth/oauth against a provider. */
export type WorkerGrant =
  | { kind: 'plain'; tokenEndpoint: string }
  | {
      kind: 'oauth'
      options: {
        issuer: string
        clientId: string
        redirectUri: string
        scope: string
        allowInsecureRequests: boolean
      }
    }

export interface WorkerSetup {
  redisUrl: string
  key: string
  api: string
  grant: WorkerGrant
  refreshTimeout: number
  lease: number
  waitTimeout: number
  retryInterval: number
  commandTimeout: number
}

/** How one request of a burst ended. */
export type Outcome =
  | { status: number }
  | { error: string; code?: string; retryable?: boolean; message: string; cause?: string }

export type ToWorker = { id: number } & (
  | { type: 'setup'; setup: WorkerSetup }
  | { type: 'clock'; offset: number }
  | { type: 'burst'; size: number }
  /** `hold-lock`: take the lock, say `holding`, never go on. `hold-store`: grant, say `granted`, never store. */
  | { type: 'arm'; mode: 'hold-lock' | 'hold-store' }
  | { type: 'report' }
)

export type FromWorker =
  | { type: 'up' }
  | { type: 'holding' }
  | { type: 'granted' }
  | { type: 'reply'; id: number; outcomes?: Outcome[]; stats?: EngineStats; texts?: string[] }
