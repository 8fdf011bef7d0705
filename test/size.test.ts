import { readdirSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { BUDGETS, measure, REAUTH_TARGETS } from '../bench/size.js'

// Each @reauth package, bundled with its runtime dependencies (peers external), minified and
// gzipped, stays within its budget in bench/size.ts. Raise a budget only with a reason.
describe('bundle size budgets (min+gzip)', () => {
  it('measures every package in packages/, each with a budget', () => {
    const packages = readdirSync(new URL('../packages', import.meta.url)).map((n) => `@reauth/${n}`)
    expect(REAUTH_TARGETS.map((target) => target.name).sort()).toEqual(packages.sort())
    expect(Object.keys(BUDGETS).sort()).toEqual(packages.sort())
  })

  for (const target of REAUTH_TARGETS) {
    it(`${target.name} is within ${BUDGETS[target.name]} bytes`, async () => {
      const size = await measure(target)
      const budget = BUDGETS[target.name]
      expect(budget).toBeTypeOf('number')
      expect(size.gzip, `${target.name}: ${size.gzip} B min+gzip`).toBeLessThanOrEqual(budget ?? 0)
      // A bundle this small means the entry resolved to nothing: the measurement is broken.
      expect(size.gzip).toBeGreaterThan(500)
    }, 20_000)
  }
})
