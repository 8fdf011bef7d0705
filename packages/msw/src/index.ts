export { createAuthServer } from './auth-server.js'
export type { BearerChallengeParams } from './bearer-challenge.js'
export { bearerChallenge } from './bearer-challenge.js'
export { pkceChallenge } from './pkce.js'
export type {
  AuthorizationCodeOptions,
  AuthServer,
  AuthServerCounters,
  AuthServerOptions,
  DpopCounters,
  DpopServerOptions,
  ProtectedMethod,
  ProtectedResolver,
  ProtectedResolverInfo,
  ProtectedToken,
  ProtectOptions,
  RouteCounters,
  SignInOptions,
  TokenHold,
  TokenOutcome,
} from './types.js'
