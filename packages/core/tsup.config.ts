import { defineConfig } from 'tsup'
import base from '../../tsup.base.js'

// Two entries: the users' `@reauth/core` and the adapter authors' `@reauth/core/adapter`.
export default defineConfig({ ...base, entry: ['src/index.ts', 'src/adapter.ts'] })
