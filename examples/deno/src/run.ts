/**
 * Runs main.ts under Deno (the npm package's binary) against the embedded oidc-provider and
 * protected API, passing them the way a user would: REAUTH_* environment variables.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { exampleSession } from '@reauth/testbed'

const session = await exampleSession()
console.log(`provider: ${session.describe}`)
const deno = createRequire(import.meta.url).resolve('deno/bin.cjs')
const main = fileURLToPath(new URL('../main.ts', import.meta.url))
// main.ts is typechecked by the repository's tsc (deno-globals.ts); `deno run --check` would
// also check the packages' TypeScript sources against Deno's own lib, which they do not target.
// Not spawnSync: the provider and the API run on this process's event loop.
const child = spawn(
  process.execPath,
  [
    deno,
    'run',
    '--conditions=source',
    '--sloppy-imports',
    '--allow-net=127.0.0.1',
    '--allow-env',
    main,
  ],
  {
    stdio: 'inherit',
    env: {
      ...process.env,
      NO_COLOR: '1',
      REAUTH_ISSUER: session.client.issuer?.toString(),
      REAUTH_CLIENT_ID: session.client.clientId,
      REAUTH_REFRESH_TOKEN: session.tokens.refreshToken,
      REAUTH_API_URL: `${session.api}${session.path}`,
      // the embedded provider's access tokens live 2 s: each burst starts with an expired one
      REAUTH_WAIT_MS: '2500',
    },
  },
)
const [code] = await once(child, 'exit')
await session.close()
process.exitCode = typeof code === 'number' ? code : 1
