import type { Engine } from '@reauth/core'
import { assertEngine, type Connection, connect } from '@reauth/core/adapter'
import { CALLER, type CallerOptions } from './ky-majors.js'
import { prefixOrigin } from './prefix-origin.js'
import {
  createHooks,
  type KyFunction,
  type KyLike,
  type ReauthKyOptions,
  validateKy,
} from './reauth-hooks.js'

const METHODS = new Set(['get', 'post', 'put', 'patch', 'head', 'delete'])

/** Keep the caller's own `signal` in `context`: ky 1 hands hooks only the one it derives from it. */
function withCaller(options: unknown): unknown {
  if (typeof options !== 'object' || options === null) return options
  const { signal, context } = options as { signal?: unknown; context?: unknown }
  if (!(signal instanceof AbortSignal)) return options
  const caller: CallerOptions = { signal }
  return {
    ...options,
    context: {
      ...(typeof context === 'object' && context !== null ? context : {}),
      [CALLER]: caller,
    },
  }
}

/** The instance, its methods and the instances it `extend`s into, each passing the caller's signal on. */
function capture(instance: KyFunction): KyFunction {
  const methods = new Map<PropertyKey, unknown>()
  return new Proxy(instance, {
    apply(target, thisArg, args: unknown[]) {
      return Reflect.apply(target, thisArg, [args[0], withCaller(args[1])])
    },
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver)
      if (typeof value !== 'function') return value
      if (property === 'extend') {
        return (defaults: object) => capture((value as KyFunction['extend']).call(target, defaults))
      }
      if (typeof property !== 'string' || !METHODS.has(property)) return value
      let method = methods.get(property)
      if (!method) {
        method = (input: unknown, options: unknown) =>
          (value as (input: unknown, options: unknown) => unknown).call(
            target,
            input,
            withCaller(options),
          )
        methods.set(property, method)
      }
      return method
    },
  })
}

/**
 * Extend a ky instance (ky 1 or ky 2) with reauth: the token goes to allowed origins only
 * (default: the engine's `origins`, else the instance's `prefixUrl` / `prefix` / `baseUrl`
 * origin); concurrent 401s make one refresh and each request is replayed once, body
 * byte-identical. Returns an instance of the same type; its `extend` keeps reauth. A refresh
 * function may use it: pass the refresh `signal` and its request goes untouched. Opt out per
 * request with `context: { reauth: false }`.
 *
 * @example
 * import ky from 'ky'
 * import { createEngine } from '@reauth/core'
 * import { withReauth } from '@reauth/ky'
 *
 * const engine = createEngine({ tokens, refresh })
 * const api = withReauth(ky.create({ prefixUrl: 'https://api.example.com' }), engine)
 * const me = await api.get('me').json()
 */
export function withReauth<K extends KyLike>(
  instance: K,
  engine: Engine,
  options: ReauthKyOptions = {},
): K {
  validateKy(instance)
  assertEngine(engine)
  const replayKy = instance.create({})
  let reauth: Connection | undefined
  const extended = instance.extend((parent: Record<string, unknown>) => {
    reauth ??= connect(engine, {
      origins: options.origins,
      base: prefixOrigin(parent),
      baseHint: 'the instance a prefixUrl (ky 1) / prefix or baseUrl (ky 2)',
    })
    return { hooks: createHooks(reauth, { replayKy }) }
  })
  return capture(extended) as unknown as K
}
