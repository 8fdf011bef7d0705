/**
 * The runtime matrix's entry for Node, Bun and Deno: every adapter that runs there.
 * Usage: <runtime> main.mjs <server origin> <runtime name>
 */
import { harnesses } from '../support/harness.js'
import { RESULT_PREFIX, runScenarios } from './scenarios.js'

declare const Deno: { args: string[]; version: { deno: string } } | undefined
const args: string[] =
  typeof Deno === 'undefined' ? (globalThis.process?.argv.slice(2) ?? []) : Deno.args
const [base, runtime] = args
if (!base || !runtime) throw new Error('usage: main.mjs <server origin> <runtime name>')
const versions = globalThis.process?.versions as Record<string, string | undefined> | undefined
const version =
  typeof Deno !== 'undefined'
    ? `deno ${Deno.version.deno}`
    : versions?.bun
      ? `bun ${versions.bun}`
      : `node ${versions?.node}`
const results = await runScenarios(base, runtime, harnesses)
console.log(RESULT_PREFIX + JSON.stringify({ version, results }))
