import { http } from 'msw'
import mswPackage from 'msw/package.json' with { type: 'json' }
import { expect, it } from 'vitest'

// The `msw` project runs this package's tests on msw 2, the `msw3` project (Node 24 pass) on
// msw 3 through an alias; each names its major, and this proves that one is what the tests load
// (`msw/package.json` resolves through the same alias as the code under test).
it(`runs on msw ${process.env.REAUTH_MSW_MAJOR}`, () => {
  expect(process.env.REAUTH_MSW_MAJOR).toMatch(/^[23]$/)
  expect(mswPackage.version.split('.')[0]).toBe(process.env.REAUTH_MSW_MAJOR)
  expect(typeof http.post).toBe('function')
})
