import type { Logger } from '@reauth/core'

/** Log one line through an optional logger, as the engine does: prefixed, never throwing. */
export function logLine(
  logger: Logger | undefined,
  level: keyof Logger,
  message: string,
  meta?: Record<string, unknown>,
): void {
  try {
    const method = logger?.[level]
    if (!method) return
    if (meta === undefined) method.call(logger, `[reauth] ${message}`)
    else method.call(logger, `[reauth] ${message}`, meta)
  } catch {
    // A broken logger must not break the refresh.
  }
}
