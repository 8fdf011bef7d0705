export type {
  KyLike,
  ReauthAfterResponseHook,
  ReauthBeforeRequestHook,
  ReauthContext,
  ReauthHooks,
  ReauthInitHook,
  ReauthKyOptions,
} from './reauth-hooks.js'
export { reauthHooks } from './reauth-hooks.js'
export { withReauth } from './with-reauth.js'
