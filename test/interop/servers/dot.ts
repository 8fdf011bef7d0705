import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { generateKeyPairSync } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { InteropServer, ServerCounters } from './types.js'

/** Debian's python3-django-oauth-toolkit lives in the system Python, not in a pyenv one on PATH. */
const PYTHON = '/usr/bin/python3'
const SCRIPT = fileURLToPath(new URL('./dot_server.py', import.meta.url))
const REDIRECT_URI = 'http://127.0.0.1/callback'
const USER = 'alice'
/** A secret with characters that RFC 6749 §2.3.1 form-encodes inside HTTP Basic. */
const SECRET = 'dot-s3cret+/=~:%'
const RESOURCE_SERVER = { id: 'orders-api', secret: 'orders-api-secret' }
const STARTUP_TIMEOUT = 30_000

function versions(): { dot: string; django: string } {
  const out = execFileSync(
    PYTHON,
    [
      '-c',
      'import oauth2_provider, django; print(oauth2_provider.__version__, django.get_version())',
    ],
    { encoding: 'utf8' },
  )
  const [dot = '?', django = '?'] = out.trim().split(' ')
  return { dot, django }
}

/** Wait for `listening <port>` on stdout, at most STARTUP_TIMEOUT; fail with stderr otherwise. */
function waitForPort(child: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    let stdout = ''
    let stderr = ''
    const timer = setTimeout(
      () => fail(new Error(`django-oauth-toolkit did not start in ${STARTUP_TIMEOUT} ms`)),
      STARTUP_TIMEOUT,
    )
    function fail(error: Error) {
      clearTimeout(timer)
      reject(new Error(`${error.message}\n${stderr.slice(-2000)}`))
    }
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString()
      const port = /listening (\d+)/.exec(stdout)?.[1]
      if (port) {
        clearTimeout(timer)
        resolve(Number(port))
      }
    })
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString()
    })
    child.once('error', fail)
    child.once('exit', (code) => fail(new Error(`django-oauth-toolkit exited with ${code}`)))
  })
}

/**
 * Start django-oauth-toolkit (Debian package) as an OpenID Provider on 127.0.0.1: refresh
 * token rotation, PKCE required, a public client and a confidential one, and a resource
 * server client for RFC 7662 introspection.
 */
export async function startDjangoOAuthToolkit(
  options: { accessTokenTtl?: number } = {},
): Promise<InteropServer> {
  const { dot, django } = versions()
  const dataDir = mkdtempSync(join(tmpdir(), 'reauth-dot-'))
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const config = {
    dataDir,
    accessTokenTtl: options.accessTokenTtl ?? 3600,
    // DOT issues refresh tokens without an offline_access scope, and does not know that scope.
    scopes: ['openid', 'read', 'write', 'introspection'],
    user: USER,
    redirectUri: REDIRECT_URI,
    clients: [
      { clientId: 'dot-public', type: 'public', grant: 'authorization-code' },
      {
        clientId: 'dot-confidential',
        clientSecret: SECRET,
        type: 'confidential',
        grant: 'authorization-code',
      },
      {
        clientId: RESOURCE_SERVER.id,
        clientSecret: RESOURCE_SERVER.secret,
        type: 'confidential',
        grant: 'client-credentials',
      },
    ],
  }
  const child = spawn(PYTHON, [SCRIPT], {
    env: {
      ...process.env,
      INTEROP_CONFIG: JSON.stringify(config),
      INTEROP_RSA_KEY: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      PYTHONDONTWRITEBYTECODE: '1',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  // A worker that dies without afterAll must not leave the server behind.
  const killOnExit = () => child.kill('SIGKILL')
  process.once('exit', killOnExit)
  let issuer: string
  try {
    // Discovery is at `${issuer}/.well-known/openid-configuration/` (trailing slash); the URL
    // without it answers 301 (Django's APPEND_SLASH), which discover() follows.
    issuer = `http://127.0.0.1:${await waitForPort(child)}/o`
  } catch (error) {
    child.kill('SIGKILL')
    process.off('exit', killOnExit)
    rmSync(dataDir, { recursive: true, force: true })
    throw error
  }
  const origin = new URL(issuer).origin
  const basic = `Basic ${Buffer.from(`${RESOURCE_SERVER.id}:${RESOURCE_SERVER.secret}`).toString('base64')}`

  async function post(path: string, body: Record<string, string>): Promise<Response> {
    return fetch(`${issuer}${path}`, {
      method: 'POST',
      headers: { authorization: basic },
      body: new URLSearchParams(body),
    })
  }

  return {
    name: 'django-oauth-toolkit',
    version: `${dot} (Debian python3-django-oauth-toolkit, Django ${django})`,
    issuer,
    // no scopes_supported in DOT's metadata, so 'auto' would ask for offline_access
    signIn: { offlineAccess: false },
    redirectUri: REDIRECT_URI,
    clients: [
      { clientId: 'dot-public', clientAuth: 'none' },
      { clientId: 'dot-confidential', clientSecret: SECRET, clientAuth: 'client_secret_basic' },
      { clientId: 'dot-confidential', clientSecret: SECRET, clientAuth: 'client_secret_post' },
    ],
    openid: true,
    reuseRevokesFamily: false,
    async authorize(url) {
      // skip_authorization on every client: the signed-in user is sent straight back.
      const response = await fetch(url, { redirect: 'manual', headers: { 'x-interop-user': USER } })
      await response.arrayBuffer()
      const location = response.headers.get('location')
      if (response.status !== 302 || !location) {
        throw new Error(`DOT authorize answered ${response.status} (${url.pathname})`)
      }
      return new URL(location, url)
    },
    async isActive(accessToken) {
      const response = await post('/introspect/', { token: accessToken })
      if (!response.ok) throw new Error(`DOT introspection answered ${response.status}`)
      return ((await response.json()) as { active?: unknown }).active === true
    },
    async expireAccessToken(accessToken) {
      // Not RFC 7009 revocation: in DOT 1.7 a refresh token whose access token was revoked
      // fails with HTTP 500 (get_original_scopes: AccessToken.DoesNotExist).
      const response = await fetch(`${origin}/_interop/expire`, {
        method: 'POST',
        body: new URLSearchParams({ token: accessToken }),
      })
      const { expired } = (await response.json()) as { expired: number }
      if (expired !== 1) throw new Error('DOT did not expire the access token')
    },
    async counters() {
      const response = await fetch(`${origin}/_interop/counters`)
      if (!response.ok) throw new Error(`DOT counters answered ${response.status}`)
      return (await response.json()) as ServerCounters
    },
    async stop() {
      process.off('exit', killOnExit)
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
        child.kill('SIGTERM')
        await exited
      }
      rmSync(dataDir, { recursive: true, force: true })
    },
  }
}
