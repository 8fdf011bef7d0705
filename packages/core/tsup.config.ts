import { defineConfig } from 'tsup'
import base from '../../tsup.base.js'

// Two entries: the users' `@reauth/core` and the adapter authors' `@reauth/core/adapter`.
// p-queue (ESM only; with eventemitter3 and p-timeout) is bundled in: the CJS build then needs
// no require() of an ES module, which Node 20 hands back without the default export interop.
export default defineConfig({
  ...base,
  entry: ['src/index.ts', 'src/adapter.ts'],
  noExternal: ['p-queue'],
})
