export type { AttachReauthOptions, DetachReauth } from './attach-reauth.js'
export { attachReauth } from './attach-reauth.js'
