import type { Logger } from './types.js'

const LEVELS = ['debug', 'info', 'warn', 'error'] as const

/**
 * A logger whose every level exists, prefixes `[reauth]` and never throws (a broken logger
 * must not break requests). Packages built on the engine log through it too.
 *
 * @example
 * const log = createLogger(options.logger)
 * log.warn('Web Locks are not available')
 */
export function createLogger(logger: Logger | undefined): Required<Logger> {
  const result = {} as Required<Logger>
  for (const level of LEVELS) {
    result[level] = (message, meta) => {
      try {
        const method = logger?.[level]
        if (method) {
          if (meta === undefined) method.call(logger, `[reauth] ${message}`)
          else method.call(logger, `[reauth] ${message}`, meta)
        }
      } catch {
        // A broken logger must not break requests.
      }
    }
  }
  return result
}

/** `METHOD origin/path` for log lines and messages: the query is dropped (it may hold secrets). */
export function describeUrl(method: string | undefined, url: string | URL): string {
  let where: string
  try {
    const parsed = new URL(url)
    where = `${parsed.origin}${parsed.pathname}`
  } catch {
    where = '(invalid URL)'
  }
  return method ? `${method.toUpperCase()} ${where}` : where
}
