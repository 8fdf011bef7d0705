import type { MeterProvider, TracerProvider } from '@opentelemetry/api'
import { createEngine } from '@reauth/core'
import { expectTypeOf, test } from 'vitest'
import { type InstrumentEngineOptions, instrumentEngine } from './index.js'

test('instrumentEngine takes an engine and optional providers, and returns the stop function', () => {
  const engine = createEngine({ refresh: async ({ tokens }) => tokens })
  expectTypeOf(instrumentEngine(engine)).toEqualTypeOf<() => void>()
  expectTypeOf<InstrumentEngineOptions['meterProvider']>().toEqualTypeOf<
    MeterProvider | undefined
  >()
  expectTypeOf<InstrumentEngineOptions['tracerProvider']>().toEqualTypeOf<
    TracerProvider | undefined
  >()
  expectTypeOf(instrumentEngine).toBeCallableWith(engine, {
    attributes: { 'reauth.engine': 'billing' },
    waitSpans: false,
  })
  // @ts-expect-error an engine is required
  instrumentEngine()
})
