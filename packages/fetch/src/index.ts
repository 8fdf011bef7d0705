export type { CreateFetchOptions, ReauthFetch, ReauthRequestInit } from './create-fetch.js'
export { createFetch } from './create-fetch.js'
