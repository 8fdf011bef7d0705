import { asksForNonce } from './auth-error.js'
import { createDpopNonces, createDpopProof } from './dpop.js'
import { errorForRequest, RefreshError } from './errors.js'
import type { Events } from './events.js'
import type { Grants } from './grant.js'
import { Lane, type Target } from './lane.js'
import { describeUrl } from './logger.js'
import type { EngineConfig } from './options.js'
import { isPureMatcher, type OriginMatcher } from './origins.js'
import type { Refresher } from './refresh.js'
import {
  type AuthFailure,
  type Credentials,
  LATER,
  type OutgoingRequest,
  type Pass,
  type RequestPath,
  type Signal,
} from './request-types.js'
import { isPromise, type Session } from './session.js'
import { authorizationHeader, isDpopBound } from './token-set.js'
import type { AuthResponse, TokenSet } from './types.js'
import { resolveRequestUrl } from './url.js'

export type {
  AuthFailure,
  Credentials,
  OutgoingRequest,
  Pass,
  RequestPath,
} from './request-types.js'

/** An absolute http(s) URL: resolved the same way whatever the page's base URL. */
const ABSOLUTE = /^https?:\/\//i
/** Decisions kept per policy before the cache starts over. */
const MAX_DECISIONS = 1_000

/** Nonce retries of one request (a nonce may rotate again while the first retry travels). */
const MAX_NONCE_RETRIES = 2

/** Waiters share one failure object: each caller gets its own copy. */
function copyForRequest(error: unknown): never {
  throw errorForRequest(error, {})
}

const NOTHING: Promise<undefined> = Promise.resolve(undefined)
const noop = () => {}

type Outcome<T> = { ok: true; value: T } | { ok: false; error: unknown }

function settle<T>(promise: Promise<T>): Promise<Outcome<T>> {
  return promise.then(
    (value) => ({ ok: true, value }),
    (error: unknown) => ({ ok: false, error }),
  )
}

/** The resource (RFC 8707) whose token a send's credentials carry. */
const resources = new WeakMap<Credentials, string>()
/** A {@link Pass}: the set a parked call waited for (private: it stays inside core). */
class HeldPass {
  readonly #set: TokenSet | undefined
  readonly #resource: string | undefined
  constructor(set: TokenSet | undefined, resource: string | undefined) {
    this.#set = set
    this.#resource = resource
  }
  /** The set `pass` carries for `resource`, while it is unexpired. */
  static usable(pass: Pass | undefined, resource: string | undefined): TokenSet | undefined {
    if (!(pass instanceof HeldPass) || pass.#resource !== resource) return undefined
    const set = pass.#set
    return set && (set.expiresAt === undefined || set.expiresAt > Date.now()) ? set : undefined
  }
}

/** Bearer credentials per token set (see `credentialsFor`). */
const bearerCredentials = new WeakMap<TokenSet, Credentials>()

function remember(sent: Credentials, resource: string | undefined): Credentials {
  if (resource !== undefined) resources.set(sent, resource)
  return sent
}

export function createRequestPath(
  config: EngineConfig,
  session: Session,
  refresher: Refresher,
  grants: Grants,
  events: Events,
): RequestPath {
  const { log, queue } = config
  const { counts } = events
  /** DPoP nonces per origin, from `DPoP-Nonce` response headers. */
  const nonces = createDpopNonces()
  /** What the fast lane answers from (see lane.ts): kept up to date here. */
  const lane = new Lane(config.store, grants.signals, config.hasResources)

  /**
   * What a send of `request` carries for `tokens`: `Authorization`, and for a DPoP-bound set a
   * proof made for this very send (method, URL, token hash, the origin's nonce).
   */
  function credentialsFor(
    tokens: TokenSet,
    resource: string | undefined,
    method: string | undefined,
    url: string | URL,
  ): Credentials | Promise<Credentials> {
    if (!isDpopBound(tokens)) {
      // Bearer: the same headers for every send with this set — one object, made once.
      const known = bearerCredentials.get(tokens)
      const authorization = authorizationHeader(tokens)
      if (known?.headers.authorization === authorization && resources.get(known) === resource) {
        return known
      }
      const made = remember({ headers: { authorization } }, resource)
      bearerCredentials.set(tokens, made)
      return made
    }
    return proofCredentials(tokens, resource, method, url)
  }

  async function proofCredentials(
    tokens: TokenSet,
    resource: string | undefined,
    method: string | undefined,
    url: string | URL,
  ): Promise<Credentials> {
    const target = resolveRequestUrl(url)
    if (!tokens.dpopKey || !target) {
      throw new RefreshError('A DPoP-bound token needs its key pair ("dpopKey") to be sent', {
        retryable: false,
        field: 'dpopKey',
      })
    }
    const proof = await createDpopProof(tokens.dpopKey, {
      htm: method ?? 'GET',
      htu: target,
      accessToken: tokens.accessToken,
      nonce: nonces.get(target),
    })
    return remember(
      { headers: { authorization: authorizationHeader(tokens), dpop: proof } },
      resource,
    )
  }

  /** The set to retry with after an auth failure of a send made with `sent`. */
  async function recoverTokens(
    sent: string | undefined,
    signal: Signal,
    resource: string | undefined,
  ): Promise<TokenSet> {
    counts.authErrors++
    if (signal?.aborted) throw signal.reason
    const stored = config.acquire ? await session.read() : await session.require()
    if (!stored) {
      if (session.isEnded) throw session.endedError()
      return refresher.wait(undefined, 'reactive', signal, resource)
    }
    const current = session.view(stored, resource)
    if (authorizationHeader(current) !== sent && !session.expiresSoon(current)) {
      counts.staleRetries++
      return current
    }
    return refresher.wait(current, 'reactive', signal, resource)
  }

  /** Origin decisions per list policy, for absolute URLs (a relative one depends on the page's base). */
  const decisions = new WeakMap<OriginMatcher, Map<string, Target | null>>()

  /** Where a URL's token may go under `policy`: the resource it is for, or `null` (nowhere). */
  function decide(input: string | URL, policy: OriginMatcher | undefined): Target | null {
    if (!policy) return null
    // The same URL under the same policy as the last request (the common case).
    if (input === lane.url && policy === lane.policy) return lane.decision
    const decision = decideAnew(input, policy)
    // Only an absolute URL: a relative one depends on the page's base URL.
    if (typeof input === 'string' && ABSOLUTE.test(input) && isPureMatcher(policy)) {
      lane.url = input
      lane.policy = policy
      lane.decision = decision
    }
    return decision
  }

  function decideAnew(input: string | URL, policy: OriginMatcher): Target | null {
    const key = typeof input === 'string' && ABSOLUTE.test(input) ? input : undefined
    let cache = key === undefined || !isPureMatcher(policy) ? undefined : decisions.get(policy)
    const cached = key === undefined ? undefined : cache?.get(key)
    if (cached !== undefined) return cached
    const url = resolveRequestUrl(input)
    const decision = url && policy(url) ? { resource: config.resourceFor(url) } : null
    if (key !== undefined && isPureMatcher(policy)) {
      if (!cache) {
        cache = new Map()
        decisions.set(policy, cache)
      }
      if (cache.size >= MAX_DECISIONS) cache.clear()
      cache.set(key, decision)
    }
    return decision
  }

  /** The resource a request's token is for, or `null` when the request goes untouched. */
  function target(request: OutgoingRequest, allowed: OriginMatcher | undefined): Target | null {
    if (request.skip || request.hasAuthorization) return null
    // The refresh function's own request (it passed the context signal on): never wait on
    // the refresh it belongs to, or it would wait on itself.
    if (request.signal && grants.signals.has(request.signal)) return null
    return decide(request.url, allowed ?? config.origins)
  }

  /** Why not: a request that cannot be sent again goes back to its caller (counted, logged). */
  function replayable(failure: AuthFailure<unknown>): boolean {
    if (failure.unreplayable === undefined) return true
    counts.authErrors++
    counts.unreplayable++
    log.warn(`Not replaying ${describeUrl(failure.method, failure.url)}: ${failure.unreplayable}`)
    return false
  }

  /** Send again with `tokens`, through the queue; a proof is made as the send leaves the queue. */
  function resendWith<T>(failure: AuthFailure<T>, tokens: TokenSet, resource: string | undefined) {
    return path.replay(
      async () =>
        failure.resend(await credentialsFor(tokens, resource, failure.method, failure.url)),
      { signal: failure.signal },
    )
  }

  /** The refresh (or the current token, when `authorization` was stale), then the replay. */
  function recoverAndReplay<T>(
    authorization: string,
    sent: Credentials,
    failure: AuthFailure<T>,
  ): Promise<T> {
    const resource = resources.get(sent)
    failure.release?.()
    // A chain, not an async function: a request waiting here holds as little as it can.
    return recoverTokens(authorization, failure.signal, resource).then(
      (tokens) => {
        log.debug(`Replaying ${describeUrl(failure.method, failure.url)}`)
        return resendWith(failure, tokens, resource)
      },
      (error: unknown) => {
        // Waiters share one failure object: each caller gets its own copy.
        throw errorForRequest(error, failure.errorContext ?? {})
      },
    )
  }

  /**
   * A DPoP nonce retry: the same token with a proof carrying the new nonce, no grant. A nonce
   * rotated again meanwhile is followed once more (a new nonce only), and a token failure after
   * it is recovered once (a server may ask for the nonce before it looks at the token).
   */
  async function nonceRetry<T>(
    sent: Credentials,
    failure: AuthFailure<T>,
    where: URL | undefined,
  ): Promise<T> {
    const resource = resources.get(sent)
    const { signal } = failure
    failure.release?.()
    let tokens: TokenSet
    try {
      if (signal?.aborted) throw signal.reason
      tokens = session.view(await session.require(), resource)
    } catch (error) {
      throw errorForRequest(error, failure.errorContext ?? {})
    }
    log.debug('Retrying with the DPoP nonce the server asked for')
    const inspect = failure.inspect
    if (!inspect) return resendWith(failure, tokens, resource)
    let outcome: Outcome<T>
    let again: AuthResponse | undefined
    for (let retries = 0; ; retries++) {
      const used = where && nonces.get(where)
      outcome = await settle(resendWith(failure, tokens, resource))
      again = inspect(outcome)
      if (again && where) nonces.remember(where, again.headers)
      const newer = where && nonces.get(where)
      if (retries >= MAX_NONCE_RETRIES - 1 || !again || !asksForNonce(again) || newer === used)
        break
    }
    if (!again || !path.isAuthError(again)) {
      if (outcome.ok) return outcome.value
      throw outcome.error
    }
    return recoverAndReplay(authorizationHeader(tokens), sent, failure)
  }

  const path: RequestPath = {
    lane,
    async authorize(request, allowed, options = {}) {
      const to = target(request, allowed)
      if (to === null) return undefined
      const tokens = await refresher.tokens(options.signal ?? request.signal, to.resource)
      return tokens && authorizationHeader(tokens)
    },

    calm() {
      // A set outside the margin, or none at all (signed out): no request waits.
      return !config.hasResources && refresher.now() !== LATER
    },

    hold(request, allowed) {
      // A valid token and one token for every URL: the call goes now, its URL never read.
      if (path.calm() || session.asyncStore) return undefined
      let to: Target | null
      let stored: TokenSet | undefined | Promise<TokenSet | undefined>
      try {
        stored = session.readNow()
        if (isPromise(stored)) {
          stored.catch(noop)
          return undefined
        }
        if (!stored) return undefined
        to = target(request, allowed)
      } catch {
        return undefined
      }
      if (to === null || !session.expiresSoon(session.view(stored, to.resource))) return undefined
      try {
        const tokens = refresher.tokens(request.signal, to.resource)
        if (!isPromise(tokens)) return undefined
        // The set it waited for goes with the call: `attach` uses it without a second wait
        // (after a failed grant before expiry, a second read would start a second grant).
        return tokens.then((set) => {
          return new HeldPass(set, to.resource) as unknown as Pass
        }, copyForRequest)
      } catch (error) {
        return Promise.reject(errorForRequest(error, {}))
      }
    },

    ready(request, allowed, pass) {
      try {
        const to = target(request, allowed)
        if (to === null) return undefined
        if (request.signal?.aborted) return LATER
        const set = HeldPass.usable(pass, to.resource) ?? refresher.now(to.resource)
        if (set === undefined) return undefined
        // A DPoP proof is signed asynchronously: `attach` makes it.
        if (set === LATER || isDpopBound(set)) return LATER
        const sent = credentialsFor(set, to.resource, request.method, request.url) as Credentials
        // The store's own set (not a view for a resource): the lane answers for it until its
        // refresh-ahead window.
        if (pass === undefined && to.resource === undefined) {
          lane.calm(set, session.calmUntil(set), sent)
        }
        return sent
      } catch {
        return LATER
      }
    },

    attach(request, allowed, options = {}) {
      const { signal } = options
      const now =
        typeof signal !== 'function' && signal?.aborted
          ? LATER
          : path.ready(request, allowed, options.pass)
      if (now !== LATER) return now === undefined ? NOTHING : Promise.resolve(now)
      // A chain, not an async function: a request waiting for a refresh holds no frame.
      try {
        const to = target(request, allowed)
        if (to === null) return NOTHING
        const held = HeldPass.usable(options.pass, to.resource)
        if (held) {
          return Promise.resolve(credentialsFor(held, to.resource, request.method, request.url))
        }
        const tokens = refresher.tokens(options.signal ?? request.signal, to.resource)
        if (!isPromise(tokens)) {
          return Promise.resolve(
            tokens && credentialsFor(tokens, to.resource, request.method, request.url),
          )
        }
        // (A proof's own error is made for this request: only the shared refresh failure is copied.)
        return tokens.then(
          (set) => set && credentialsFor(set, to.resource, request.method, request.url),
          copyForRequest,
        )
      } catch (error) {
        return Promise.reject(errorForRequest(error, {}))
      }
    },

    isAuthError(response) {
      try {
        return config.isAuthError(response)
      } catch (error) {
        log.error('"isAuthError" threw; treating the response as no auth failure', {
          error: String((error as Error)?.name),
        })
        return false
      }
    },

    async recover(sent, options = {}, resource = undefined) {
      return authorizationHeader(await recoverTokens(sent, options.signal, resource))
    },

    replay(send, options = {}) {
      counts.replays++
      const queuedGeneration = session.generation
      return queue.run(async () => {
        // A replay that waited in the queue while the session ended (terminal failure, or a
        // sign-out) must not go out with the token it was given before.
        if (session.isEnded || session.generation !== queuedGeneration) {
          await session.require('Signed out before the request was replayed')
        }
        return send()
      }, options.signal)
    },

    respond<T>(
      sent: Credentials | undefined,
      response: AuthResponse,
      describe: () => AuthFailure<T>,
    ): Promise<T> | undefined {
      const authorization = sent?.headers.authorization
      if (sent === undefined || authorization === undefined) return undefined
      if (sent.headers.dpop === undefined) {
        // Bearer, the common case: nothing is described unless the response is an auth failure.
        if (!path.isAuthError(response)) return undefined
        const failure = describe()
        return replayable(failure) ? recoverAndReplay(authorization, sent, failure) : undefined
      }
      const failure = describe()
      // DPoP: every answer may carry the origin's next nonce (per origin: the URL as resolved).
      const where = resolveRequestUrl(failure.url)
      if (where) nonces.remember(where, response.headers)
      // The origin wants a (new) nonce: the token is fine; retry with it, no grant.
      if (asksForNonce(response)) {
        if (!replayable(failure)) return undefined
        return nonceRetry(sent, failure, where)
      }
      if (!path.isAuthError(response) || !replayable(failure)) return undefined
      return recoverAndReplay(authorization, sent, failure)
    },
  }
  return path
}
