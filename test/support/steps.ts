/**
 * The engine's request-path steps one by one, for tests that drive them directly (adapters go
 * through `@reauth/core/adapter`'s `attach` / `respond` / `run` instead). Test-only: the
 * steps are not part of any published entry.
 */
import type { AuthResponse, Engine } from '@reauth/core'
import type { OriginMatcher, OutgoingRequest } from '@reauth/core/adapter'
import { internalsOf } from '../../packages/core/src/engine.js'

type Signal = AbortSignal | null | undefined

/** A request for {@link Steps.run}, sent with the `Authorization` value (or none). */
export interface StepRequest<R> extends OutgoingRequest {
  allowed?: OriginMatcher | undefined
  send(authorization: string | undefined): Promise<R>
  response(result: R): AuthResponse
  replayable?(): string | undefined
  discard?(result: R): void
}

export interface Steps {
  authorize(
    target: OutgoingRequest & { allowed?: OriginMatcher | undefined },
    options?: { signal?: Signal },
  ): Promise<string | undefined>
  recover(sent: string | undefined, options?: { signal?: Signal }): Promise<string>
  replay<T>(send: () => Promise<T>, options?: { signal?: Signal }): Promise<T>
  isAuthError(response: AuthResponse): boolean
  /** attach, send, and the response-side step, as `@reauth/core/adapter`'s `run`. */
  run<R>(request: StepRequest<R>): Promise<R>
  readonly origins: OriginMatcher | undefined
}

export function steps(engine: Engine): Steps {
  const internals = internalsOf(engine)
  if (!internals) throw new TypeError('not an engine')
  const { path } = internals
  return {
    authorize: (target, options) => path.authorize(target, target.allowed, options),
    recover: (sent, options) => path.recover(sent, options),
    replay: (send, options) => path.replay(send, options),
    isAuthError: (response) => path.isAuthError(response),
    origins: internals.origins,
    async run(request) {
      const sent = await path.attach(request, request.allowed)
      const first = await request.send(sent?.headers.authorization)
      if (sent === undefined) return first
      const replayed = await path.respond(sent, {
        response: request.response(first),
        method: request.method,
        url: request.url,
        unreplayable: request.replayable?.(),
        signal: request.signal,
        release: () => request.discard?.(first),
        resend: (next) => request.send(next.headers.authorization),
      })
      return replayed === undefined ? first : replayed
    },
  }
}
