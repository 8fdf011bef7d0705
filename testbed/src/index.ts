export type { ApiCounters, ApiOptions, RunningApi } from './api.js'
export { startApi } from './api.js'
export type { ExampleSession } from './example-session.js'
export { exampleSession } from './example-session.js'
export type {
  AccessTokenFormat,
  ProviderCounters,
  ProviderOptions,
  RunningProvider,
} from './provider.js'
export {
  API_CLIENT,
  PUBLIC_CLIENT_ID,
  REDIRECT_URI,
  RESOURCE_SCOPE,
  RESOURCES,
  SERVICE_CLIENT,
  startProvider,
} from './provider.js'
export { clientOptions, signInOverHttp } from './sign-in.js'
export { storeWithoutExpiry } from './store-without-expiry.js'
