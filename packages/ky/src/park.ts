/**
 * ky's side of parking (core's parking lot does the waiting and the timeouts): a parked call's
 * promise carries ky's body shortcuts, asked of ky as soon as the call goes.
 */

import type { ParkedCall, Pass } from '@reauth/core/adapter'

/** ky's body shortcuts on a `ResponsePromise` (ky 1; `bytes` since ky 1.8 and in ky 2). */
type BodyType = 'json' | 'text' | 'formData' | 'arrayBuffer' | 'blob' | 'bytes'

/** What ky's calls return: a promise of the response with body shortcuts. */
export type ResponsePromise = Promise<Response> & Partial<Record<BodyType, () => Promise<unknown>>>

interface Ask {
  type: BodyType
  resolve(value: unknown): void
  reject(error: unknown): void
}

const noop = () => {}

function shortcut(sent: ResponsePromise, type: BodyType): Promise<unknown> {
  const method = sent[type]
  if (typeof method !== 'function') {
    return Promise.reject(new TypeError(`This ky has no ResponsePromise.${type}()`))
  }
  return method.call(sent)
}

/**
 * A parked ky call: how it goes to ky, and the body shortcuts its caller asked for while it
 * was parked (ky sets `Accept` from them). Subclasses say how the call is made.
 */
export abstract class KyParkedCall implements ParkedCall<Response> {
  abstract readonly timeout: number | false
  #sent: ResponsePromise | undefined
  #failed: { error: unknown } | undefined
  /** Usually one shortcut is asked for: no list then. */
  #asked: Ask | Ask[] | undefined
  /** Make the call through ky now. */
  protected abstract send(pass: Pass): ResponsePromise
  abstract timeoutError(): unknown
  go(pass: Pass): ResponsePromise {
    const sent = this.send(pass)
    this.#sent = sent
    for (const ask of this.#take()) shortcut(sent, ask.type).then(ask.resolve, ask.reject)
    return sent
  }
  failed(error: unknown): unknown {
    this.#failed = { error }
    for (const ask of this.#take()) ask.reject(error)
    return error
  }
  body(type: BodyType): Promise<unknown> {
    if (this.#sent) return shortcut(this.#sent, type)
    if (this.#failed) return Promise.reject(this.#failed.error)
    return new Promise((resolve, reject) => {
      const ask: Ask = { type, resolve, reject }
      const asked = this.#asked
      if (asked === undefined) this.#asked = ask
      else if (Array.isArray(asked)) asked.push(ask)
      else this.#asked = [asked, ask]
    })
  }
  #take(): Ask[] {
    const asked = this.#asked
    this.#asked = undefined
    return asked === undefined ? [] : Array.isArray(asked) ? asked : [asked]
  }
}

/** A parked call's `ResponsePromise`: a promise with ky's body shortcuts on its prototype. */
export class Parked extends Promise<Response> {
  static override get [Symbol.species]() {
    return Promise
  }
  readonly #call: KyParkedCall
  constructor(
    executor: (resolve: (value: Response) => void, reject: (error: unknown) => void) => void,
    call: KyParkedCall,
  ) {
    super(executor)
    this.#call = call
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
    // As ky's own shortcuts await the call: its failure is handled through the shortcut.
    this.then(undefined, noop)
    return this.#call.body(type)
  }
}
