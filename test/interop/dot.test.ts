/** Interop: django-oauth-toolkit (Debian python3-django-oauth-toolkit), an OpenID Provider. */
import { describe } from 'vitest'
import { startDjangoOAuthToolkit } from './servers/dot.js'
import { interopSuite } from './suite.js'

describe('interop: django-oauth-toolkit', () => {
  interopSuite({
    start: () => startDjangoOAuthToolkit(),
    clientAuth: ['none', 'client_secret_basic', 'client_secret_post'],
  })
})
