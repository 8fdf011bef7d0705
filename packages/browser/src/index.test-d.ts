import type { RefreshLock, StoredSession, TokenSet, TokenStore } from '@reauth/core'
import { expectTypeOf, test } from 'vitest'
import {
  type BroadcastStore,
  createBroadcastStore,
  createStorageStore,
  createWebLock,
  type StorageStore,
  type WebLock,
} from './index.js'

test('the pieces fit the engine options', () => {
  expectTypeOf(createWebLock()).toEqualTypeOf<WebLock>()
  expectTypeOf(createWebLock()).toMatchTypeOf<RefreshLock>()
  expectTypeOf(createBroadcastStore()).toEqualTypeOf<BroadcastStore>()
  expectTypeOf(createBroadcastStore()).toMatchTypeOf<TokenStore>()
  expectTypeOf(createStorageStore(localStorage)).toEqualTypeOf<StorageStore>()
  expectTypeOf(createStorageStore(localStorage)).toMatchTypeOf<TokenStore>()
  expectTypeOf(createBroadcastStore().ready()).resolves.toEqualTypeOf<TokenSet | undefined>()
  // a store holds a set or the end of the session
  expectTypeOf(createBroadcastStore().get()).toEqualTypeOf<StoredSession | undefined>()
  // a Promise only while a DPoP set's key pair is read from IndexedDB
  expectTypeOf(createStorageStore(localStorage).get()).toEqualTypeOf<
    StoredSession | undefined | Promise<StoredSession | undefined>
  >()
  expectTypeOf(createWebLock)
    .parameter(0)
    .toEqualTypeOf<import('./web-lock.js').WebLockOptions | undefined>()
  // @ts-expect-error the lock needs a store that can catch up, not any store
  createWebLock({ store: { get: () => undefined } })
})
