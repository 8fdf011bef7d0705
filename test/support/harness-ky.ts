import type { Harness } from './harness.js'

/** ky under the contract suite: filled in by the ky adapter (issue 4). */
export const kyHarnesses: Harness[] = []
