import { build } from 'esbuild'
import { type Browser, chromium } from 'playwright-core'

/** Debian's Chromium, headless, with what this machine's closed network needs. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    headless: true,
    timeout: 20_000,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  })
}

/** Bundle a page module for Chromium from the packages' TypeScript sources. */
export async function bundlePage(entry: string): Promise<string> {
  const bundle = await build({
    entryPoints: [entry],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    conditions: ['source'],
    write: false,
    logLevel: 'silent',
  })
  return bundle.outputFiles[0]?.text ?? ''
}
