export type {
  BroadcastStore,
  BroadcastStoreOptions,
} from './broadcast-store.js'
export { createBroadcastStore } from './broadcast-store.js'
export type { TabSyncErrorCode } from './errors.js'
export { isTabSyncError, TabSyncError } from './errors.js'
export type { StorageStore, StorageStoreOptions } from './storage-store.js'
export { createStorageStore } from './storage-store.js'
export type { LockManagerLike, WebLock, WebLockOptions } from './web-lock.js'
export { createWebLock } from './web-lock.js'
