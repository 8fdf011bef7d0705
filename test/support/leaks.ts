import type { Engine, Logger, TokenSet } from '@reauth/core'

/**
 * Collects every text reauth produces (log lines, event payloads, errors) and every token
 * value it handled, so a test can assert that no token value reached any text.
 */
export class LeakCollector {
  readonly secrets = new Set<string>()
  readonly texts: string[] = []

  readonly logger: Logger = {
    debug: (m, meta) => this.texts.push(m, JSON.stringify(meta ?? {})),
    info: (m, meta) => this.texts.push(m, JSON.stringify(meta ?? {})),
    warn: (m, meta) => this.texts.push(m, JSON.stringify(meta ?? {})),
    error: (m, meta) => this.texts.push(m, JSON.stringify(meta ?? {})),
  }

  tokens(tokens: TokenSet | undefined): void {
    for (const value of [tokens?.accessToken, tokens?.refreshToken, tokens?.idToken]) {
      if (value) this.secrets.add(value)
    }
  }

  watch(engine: Engine): void {
    for (const event of ['refresh', 'refreshError', 'sessionExpired'] as const) {
      engine.on(event, (payload) => {
        this.texts.push(JSON.stringify(payload))
        const error = (payload as { error?: Error }).error
        if (error) this.error(error)
      })
    }
  }

  error(error: unknown): void {
    let current: unknown = error
    for (let depth = 0; current instanceof Error && depth < 5; depth++) {
      this.texts.push(current.message, current.stack ?? '', JSON.stringify(current))
      current = current.cause
    }
  }

  /** Token values found in any collected text. */
  leaks(): string[] {
    const found: string[] = []
    for (const secret of this.secrets) {
      if (this.texts.some((text) => text.includes(secret))) found.push(`${secret.slice(0, 6)}…`)
    }
    return found
  }
}
