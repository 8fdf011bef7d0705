export type {
  BroadcastStore,
  BroadcastStoreOptions,
} from './broadcast-store.js'
export { createBroadcastStore } from './broadcast-store.js'
export type { KeyStoreErrorCode, TabSyncErrorCode } from './errors.js'
export { isKeyStoreError, isTabSyncError, KeyStoreError, TabSyncError } from './errors.js'
export type { IndexedDbLike } from './idb-keys.js'
export type { StorageStore, StorageStoreOptions } from './storage-store.js'
export { createStorageStore } from './storage-store.js'
export type { LockManagerLike, WebLock, WebLockOptions } from './web-lock.js'
export { createWebLock } from './web-lock.js'
