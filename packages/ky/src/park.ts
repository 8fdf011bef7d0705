/**
 * Parking a ky call before ky builds anything (its `Request`, headers, `AbortController`,
 * timer): while a refresh the call would wait for runs, the call is only what its caller
 * passed plus one promise. When the refresh is done the call goes to ky as if just made —
 * its hooks then attach the fresh token at once.
 */

import type { Pass } from '@reauth/core/adapter'

/** ky's body shortcuts on a `ResponsePromise` (ky 1; `bytes` since ky 1.8 and in ky 2). */
type BodyType = 'json' | 'text' | 'formData' | 'arrayBuffer' | 'blob' | 'bytes'

/** What ky's calls return: a promise of the response with body shortcuts. */
export type ResponsePromise = Promise<Response> & Partial<Record<BodyType, () => Promise<unknown>>>

interface Ask {
  type: BodyType
  resolve(value: unknown): void
  reject(error: unknown): void
}

/** How a parked call goes to ky, and how it ends when its time runs out first. */
export interface ParkedCall {
  /** Make the call now (ky builds it; its hooks attach the token `hold` waited for). */
  go(pass: Pass): ResponsePromise
  /** The call's own timeout (ms), or `false`. */
  timeout: number | false
  /** ky's `TimeoutError` for this call, when its timeout runs out while it is parked. */
  timeoutError(): unknown
}

interface State {
  call: ParkedCall
  resolve(response: Response): void
  reject(error: unknown): void
  sent?: ResponsePromise | undefined
  /** Body shortcuts called while parked: asked of ky as soon as the call goes (ky sets `Accept` from them). */
  asked?: Ask[] | undefined
  /** When the call's timeout runs out while parked (ms since the epoch). */
  deadline: number
  /** The timeout's queue, while the call is parked with one. */
  queue?: Queue | undefined
  failed?: { error: unknown } | undefined
}

const noop = () => {}

/** The parked calls of one timeout value, in the order they were parked. */
interface Queue {
  timeout: number
  calls: State[]
  /** Calls still parked. At 0 the queue and its timer go. */
  live: number
  timer: ReturnType<typeof setTimeout> | undefined
}

function shortcut(sent: ResponsePromise, type: BodyType): Promise<unknown> {
  const method = sent[type]
  if (typeof method !== 'function') {
    return Promise.reject(new TypeError(`This ky has no ResponsePromise.${type}()`))
  }
  return method.call(sent)
}

const states = new WeakMap<Parked, State>()

/** A parked call's `ResponsePromise`: a promise with ky's body shortcuts on its prototype. */
class Parked extends Promise<Response> {
  static override get [Symbol.species]() {
    return Promise
  }
  json() {
    return this.#body('json')
  }
  text() {
    return this.#body('text')
  }
  formData() {
    return this.#body('formData')
  }
  arrayBuffer() {
    return this.#body('arrayBuffer')
  }
  blob() {
    return this.#body('blob')
  }
  bytes() {
    return this.#body('bytes')
  }
  #body(type: BodyType): Promise<unknown> {
    const state = states.get(this) as State
    // As ky's own shortcuts await the call: its failure is handled through the shortcut.
    this.then(undefined, noop)
    if (state.sent) return shortcut(state.sent, type)
    if (state.failed) return Promise.reject(state.failed.error)
    return new Promise((resolve, reject) => {
      state.asked ??= []
      state.asked.push({ type, resolve, reject })
    })
  }
}

/** Parks calls until their holds settle (see {@link ParkingLot.park}). */
export interface ParkingLot {
  /**
   * Park a call until `hold` settles: resolved, it goes to ky (`call.go()`); rejected (a
   * refresh failure, or the caller's abort reason), the call rejects with it and ky never sees
   * the call; when its timeout runs out first, it rejects with `call.timeoutError()`.
   */
  park(hold: Promise<Pass>, call: ParkedCall): ResponsePromise
}

/** The longest delay `setTimeout` honours. */
const MAX_TIMER = 2_147_483_647

/**
 * One timer per timeout value rather than one per parked call: calls with the same timeout
 * reach their deadlines in the order they were parked.
 */
export function createParkingLot(): ParkingLot {
  const queues = new Map<number, Queue>()

  /** The call leaves the lot: its queue forgets it (and goes, with its timer, when empty). */
  function leave(state: State): void {
    const queue = state.queue
    state.queue = undefined
    if (!queue) return
    queue.live--
    if (queue.live === 0) {
      clearTimeout(queue.timer)
      queue.calls.length = 0
      if (queues.get(queue.timeout) === queue) queues.delete(queue.timeout)
    } else if (queue.live * 2 < queue.calls.length) {
      // Most calls have left: keep only those still parked (their order is kept).
      queue.calls = queue.calls.filter((call) => call.queue === queue)
    }
  }

  function release(state: State, pass: Pass): void {
    if (state.sent || state.failed) return
    leave(state)
    let sent: ResponsePromise
    try {
      sent = state.call.go(pass)
    } catch (error) {
      // ky refused the call synchronously (a bad input, say): the parked call rejects with it.
      end(state, error)
      return
    }
    state.sent = sent
    sent.then(state.resolve, state.reject)
    for (const ask of state.asked ?? []) shortcut(sent, ask.type).then(ask.resolve, ask.reject)
    state.asked = undefined
  }

  function fail(state: State, error: unknown): void {
    if (state.sent || state.failed) return
    leave(state)
    end(state, error)
  }

  function end(state: State, error: unknown): void {
    state.failed = { error }
    state.reject(error)
    for (const ask of state.asked ?? []) ask.reject(error)
    state.asked = undefined
  }

  /** End the calls whose deadline passed; the timer waits for the next one. */
  function expire(queue: Queue): void {
    const now = Date.now()
    const due: State[] = []
    for (const state of queue.calls) {
      if (state.queue !== queue) continue
      if (state.deadline > now) break
      due.push(state)
    }
    for (const state of due) {
      let error: unknown
      try {
        error = state.call.timeoutError()
      } catch (thrown) {
        error = thrown
      }
      fail(state, error)
    }
    const next = queue.calls.find((state) => state.queue === queue)
    if (next && queues.get(queue.timeout) === queue) {
      queue.timer = setTimeout(expire, Math.max(0, next.deadline - Date.now()), queue)
    }
  }

  return {
    park(hold, call) {
      let settle: Pick<State, 'resolve' | 'reject'> | undefined
      const parked = new Parked((resolve, reject) => {
        settle = { resolve, reject }
      })
      const { timeout } = call
      const bounded = timeout !== false && timeout > 0 && timeout < MAX_TIMER
      const state: State = {
        call,
        deadline: bounded ? Date.now() + timeout : Number.POSITIVE_INFINITY,
        ...(settle as Pick<State, 'resolve' | 'reject'>),
      }
      states.set(parked, state)
      if (bounded) {
        let queue = queues.get(timeout)
        if (!queue) {
          queue = { timeout, calls: [], live: 0, timer: undefined }
          queues.set(timeout, queue)
          queue.timer = setTimeout(expire, timeout, queue)
        }
        queue.calls.push(state)
        queue.live++
        state.queue = queue
      }
      hold.then(
        (pass) => release(state, pass),
        (error: unknown) => fail(state, error),
      )
      return parked as ResponsePromise
    },
  }
}
