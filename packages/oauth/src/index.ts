export type { ClientAuthMethod, OAuthClientOptions } from './client.js'
export type { ClientCredentialsOptions } from './client-credentials.js'
export { clientCredentials } from './client-credentials.js'
export type { DiscoverOptions } from './discovery.js'
export { discover, MAX_DISCOVERY_REDIRECTS } from './discovery.js'
export type { DiscoveryErrorFields, RevocationErrorFields, SignInErrorFields } from './errors.js'
export {
  DiscoveryError,
  isDiscoveryError,
  isRevocationError,
  isSignInError,
  RevocationError,
  SignInError,
} from './errors.js'
export type { RefreshGrantOptions } from './refresh-grant.js'
export { createRefreshGrant } from './refresh-grant.js'
export type { RevokeTokensOptions } from './revocation.js'
export { revokeTokens } from './revocation.js'
export type { SignInCallback, SignInOptions, SignInRequest } from './sign-in.js'
export { beginSignIn, completeSignIn, PROTECTED_PARAMETERS } from './sign-in.js'
