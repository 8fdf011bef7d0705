/** Interop: @node-oauth/oauth2-server (npm), a plain OAuth 2.0 server with RFC 8414 metadata. */
import { describe } from 'vitest'
import { startNodeOAuth2Server } from './servers/node-oauth2-server.js'
import { interopSuite } from './suite.js'

describe('interop: @node-oauth/oauth2-server', () => {
  interopSuite({
    start: () => startNodeOAuth2Server(),
    clientAuth: ['none', 'client_secret_basic', 'client_secret_post'],
  })
})
