/** The longest delay `setTimeout` honours; beyond it a deadline cannot come first. */
const MAX_TIMER = 2_147_483_647

const noop = () => {}
/** No signal, no deadline: one object for every such wait. */
const NOTHING: DeadlineSignal = Object.freeze({ signal: undefined, done: noop })

/** A signal for one wait, and how to release its timer when the wait is over. */
export interface DeadlineSignal {
  signal: AbortSignal | null | undefined
  /** The wait is over: clear the timer (call it on every path). */
  done(): void
}

/**
 * The signal a wait on a refresh (or in the replay queue) ends on: the caller's own `signal`
 * and a call-wide deadline (ms since the epoch), which aborts with `reason()` — the client's
 * usual timeout error. Without a deadline, or one beyond what a timer can wait, the caller's
 * signal alone. Adapters use it so a client's own `timeout` bounds the whole call.
 *
 * @example
 * const wait = deadlineSignal(startedAt + timeout, config.signal, () => timeoutError(config))
 * try { await engine.recover(sent, { signal: wait.signal }) } finally { wait.done() }
 */
export function deadlineSignal(
  deadline: number | undefined,
  own: AbortSignal | null | undefined,
  reason: () => unknown,
): DeadlineSignal {
  const left = deadline === undefined ? Number.POSITIVE_INFINITY : deadline - Date.now()
  if (left > MAX_TIMER) return own ? { signal: own, done: noop } : NOTHING
  const controller = new AbortController()
  let timer: ReturnType<typeof setTimeout> | undefined
  if (left <= 0) controller.abort(reason())
  else timer = setTimeout(() => controller.abort(reason()), left)
  return {
    signal: own ? AbortSignal.any([own, controller.signal]) : controller.signal,
    done: () => clearTimeout(timer),
  }
}
