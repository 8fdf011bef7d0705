import { readdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

import { defineConfig } from 'vitest/config'

// Tests run on `src` through the `source` export condition: no build needed.
const conditions = ['source', 'node', 'import', 'module', 'development|production', 'default']

const packages = readdirSync(new URL('./packages', import.meta.url))

const typecheck = {
  enabled: true,
  include: ['**/*.test-d.ts'],
  // the root tsconfig: package tsconfigs exclude type tests from their builds
  tsconfig: fileURLToPath(new URL('./tsconfig.json', import.meta.url)),
}

// The OpenTelemetry packages' `module` builds use extensionless imports that only bundlers
// resolve; Node loads their CJS `default`, and so does @reauth/otel's project (its own
// conditions: `extends` would concatenate them with the root's).
const otelConditions = conditions.filter((c) => c !== 'module')

function atLeastNode(major: number, minor: number): boolean {
  const [m = 0, n = 0] = process.versions.node.split('.').map(Number)
  return m > major || (m === major && n >= minor)
}

/**
 * @reauth/msw's own tests on msw 3 (peer range `^2.4.0 || ^3.0.0`): `msw` and `msw/*` resolve to
 * the `msw3` alias (`npm:msw@^3`); the `msw` project runs them on msw 2.
 */
const msw3 = {
  extends: true as const,
  resolve: { alias: [{ find: /^msw(\/.*)?$/, replacement: 'msw3$1' }] },
  test: {
    name: 'msw3',
    root: 'packages/msw',
    include: ['src/**/*.test.ts'],
    env: { REAUTH_MSW_MAJOR: '3' },
    // the type tests run once, on msw 2, in the msw project
    typecheck: { enabled: false },
  },
}

/** A suite under test/: bursts of 1 000 requests and real child processes, bounded, with room for a busy CI. */
function suite(name: string, include: string[]) {
  return {
    extends: true as const,
    test: { name, root: 'test', include, testTimeout: 30_000 },
  }
}

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: conditions } },
  test: {
    typecheck,
    projects: [
      ...packages.map((name) =>
        name === 'otel'
          ? {
              resolve: { conditions: otelConditions },
              ssr: { resolve: { conditions: otelConditions, externalConditions: otelConditions } },
              test: { name, root: `packages/${name}`, include: ['src/**/*.test.ts'], typecheck },
            }
          : {
              extends: true as const,
              test: {
                name,
                root: `packages/${name}`,
                include: ['src/**/*.test.ts'],
                ...(name === 'msw' ? { env: { REAUTH_MSW_MAJOR: '2' } } : {}),
              },
            },
      ),
      // the behaviour contract, scenario by scenario, on every adapter entry
      suite('contract', ['contract.test.ts', 'dpop-nonces.test.ts', 'exports.test.ts']),
      // the fault matrix: every token-endpoint and network fault, through every adapter
      suite('faults', ['faults/**/*.test.ts']),
      // model-based interleavings of the engine against a reference model (fast-check)
      suite('model', ['model/**/*.test.ts']),
      // no token in errors, causes, logs or redirects
      suite('security', ['security/**/*.test.ts']),
      {
        extends: true as const,
        test: { name: 'e2e', root: 'test', include: ['e2e/**/*.test.ts'], testTimeout: 60_000 },
      },
      {
        // independent authorization servers the tests start (django-oauth-toolkit, @node-oauth/oauth2-server)
        extends: true as const,
        test: {
          name: 'interop',
          root: 'test',
          include: ['interop/**/*.test.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        // real services the tests start: redis-server with worker processes, Chromium
        extends: true as const,
        test: {
          name: 'services',
          root: 'test',
          include: ['redis/**/*.test.ts', 'browser/**/*.test.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      // msw 3 needs Node >= 22.12: on older Node this project does not exist (scripts/test.mjs
      // runs it in the Node 24 pass).
      ...(atLeastNode(22, 12) ? [msw3] : []),
      {
        // the scenario bundle on Node 22 and 24, Bun, Deno and workerd (processes it starts)
        extends: true as const,
        test: {
          name: 'runtimes',
          root: 'test',
          include: ['runtimes/**/*.test.ts'],
          testTimeout: 30_000,
          hookTimeout: 120_000,
        },
      },
      {
        // the bench's committed SVG charts, rendered in Chromium
        extends: true as const,
        test: {
          name: 'charts',
          root: 'test',
          include: ['charts/**/*.test.ts'],
          testTimeout: 30_000,
        },
      },
      {
        // changesets' release plan, on a scratch copy of the manifests
        extends: true as const,
        test: { name: 'release', root: 'test', include: ['release.test.ts'], testTimeout: 60_000 },
      },
      {
        // every README code block, typechecked and run against @reauth/msw
        extends: true as const,
        test: {
          name: 'readmes',
          root: 'test',
          include: ['readmes/**/*.test.ts'],
          exclude: ['**/node_modules/**', 'readmes/.generated/**'],
          testTimeout: 90_000,
          hookTimeout: 180_000,
        },
      },
      {
        extends: true as const,
        test: {
          name: 'packaging',
          root: 'test',
          include: ['packaging.test.ts', 'examples.test.ts', 'size.test.ts'],
          testTimeout: 120_000,
        },
      },
    ],
  },
})
