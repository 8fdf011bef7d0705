import { defaultClientConditions, defineConfig } from 'vite'

// Resolve the workspace packages to their TypeScript source (their `source` export
// condition), so the example builds without building the packages first.
export default defineConfig({
  resolve: { conditions: ['source', ...defaultClientConditions] },
})
