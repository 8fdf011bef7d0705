export type { InstrumentEngineOptions } from './instrument-engine.js'
export { INSTRUMENTATION_SCOPE, instrumentEngine } from './instrument-engine.js'
