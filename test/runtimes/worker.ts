/**
 * The runtime matrix inside workerd (no nodejs_compat): @reauth/fetch and core only.
 * `GET /?base=<server origin>` runs the scenarios and answers their results as JSON.
 */
import { fetchHarness } from '../support/harness-fetch.js'
import { runScenarios } from './scenarios.js'

export default {
  async fetch(request: Request): Promise<Response> {
    const base = new URL(request.url).searchParams.get('base')
    if (!base) return new Response('?base= is required', { status: 400 })
    return Response.json(await runScenarios(base, 'workerd', [fetchHarness]))
  },
}
