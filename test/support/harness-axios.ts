import type { Harness } from './harness.js'

/** axios under the contract suite: filled in by the axios adapter (issue 3). */
export const axiosHarnesses: Harness[] = []
