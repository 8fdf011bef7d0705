/**
 * Parking a call before its client builds anything (a `Request`, header copies, a timer):
 * while a refresh the call would wait for runs, the call is only what its caller passed plus
 * one promise. When the refresh is done the call goes to the client as if just made — the
 * adapter's own step then attaches the token `hold` waited for, at once.
 */

import type { Pass } from './request-types.js'

/** A call an adapter parked: how it goes to the client, and how it ends if its time runs out. */
export interface ParkedCall<T> {
  /** Make the call now (the client builds it; the adapter attaches the token `pass` carries). */
  go(pass: Pass): PromiseLike<T>
  /** The call's own timeout (ms); `false`, `0` or `undefined`: none. */
  readonly timeout: number | false | undefined
  /** The client's own timeout error for this call, when its timeout runs out while parked. */
  timeoutError(): unknown
  /**
   * The call ended while parked (a refresh failure, its abort, its timeout): told once, and
   * returns what the caller's promise rejects with (the client's own form of `error`, say).
   */
  failed?(error: unknown): unknown
  /**
   * Instead of `failed`: the call still goes to the client, made to fail there with `error`
   * (so the client's own error handling — axios's response interceptors, say — sees it), and
   * the caller gets what that settles with.
   */
  fail?(error: unknown): PromiseLike<T>
}

/** Makes the promise a parked call's caller gets (a subclass of `Promise`, say, with ky's body shortcuts). */
export type ParkedPromise<T, P extends Promise<T>> = (
  executor: (resolve: (value: T) => void, reject: (error: unknown) => void) => void,
) => P

/** Parks calls until their holds settle (see {@link ParkingLot.park}). */
export interface ParkingLot {
  /**
   * Park a call until `hold` settles: resolved, it goes to the client (`call.go(pass)`) and the
   * caller gets what that settles with; rejected (a refresh failure, or the caller's abort
   * reason), the call rejects with it (`call.failed`) and the client never sees it — or, with
   * `call.fail`, goes to the client to fail there; when its timeout runs out first, it ends the
   * same way with `call.timeoutError()`.
   */
  park<T, P extends Promise<T> = Promise<T>>(
    hold: Promise<Pass>,
    call: ParkedCall<T>,
    promise?: ParkedPromise<T, P>,
  ): P
}

/** One parked call (a class: no closures per call while it waits). */
class State {
  /** The timeout's queue, while the call is parked with one. */
  queue: Queue | undefined = undefined
  done = false
  constructor(
    readonly call: ParkedCall<unknown>,
    /** When the call's timeout runs out while parked (ms since the epoch). */
    readonly deadline: number,
    readonly resolve: (value: unknown) => void,
    readonly reject: (error: unknown) => void,
  ) {}
}

/** The parked calls of one timeout value, in the order they were parked. */
interface Queue {
  timeout: number
  calls: State[]
  /** Calls still parked. At 0 the queue and its timer go. */
  live: number
  timer: ReturnType<typeof setTimeout> | undefined
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
    state.done = true
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
    if (state.done) return
    leave(state)
    let sent: PromiseLike<unknown>
    try {
      sent = state.call.go(pass)
    } catch (error) {
      // The client refused the call synchronously (a bad input, say): it rejects with that.
      end(state, error, false)
      return
    }
    sent.then(state.resolve, state.reject)
  }

  function fail(state: State, error: unknown): void {
    if (state.done) return
    leave(state)
    end(state, error)
  }

  function end(state: State, error: unknown, toClient = true): void {
    let reason = error
    try {
      if (toClient && state.call.fail) {
        state.call.fail(error).then(state.resolve, state.reject)
        return
      }
      if (state.call.failed) reason = state.call.failed(error)
    } catch (thrown) {
      reason = thrown
    }
    state.reject(reason)
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
    park<T, P extends Promise<T>>(
      hold: Promise<Pass>,
      call: ParkedCall<T>,
      promise?: ParkedPromise<T, P>,
    ): P {
      let resolve: ((value: T) => void) | undefined
      let reject: ((error: unknown) => void) | undefined
      const executor = (yes: (value: T) => void, no: (error: unknown) => void) => {
        resolve = yes
        reject = no
      }
      const parked = promise ? promise(executor) : (new Promise<T>(executor) as P)
      const { timeout } = call
      const bounded = typeof timeout === 'number' && timeout > 0 && timeout < MAX_TIMER
      const state = new State(
        call as ParkedCall<unknown>,
        bounded ? Date.now() + timeout : Number.POSITIVE_INFINITY,
        resolve as (value: unknown) => void,
        reject as (error: unknown) => void,
      )
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
      return parked
    },
  }
}
