/**
 * Code blocks of a README, as the README test compiles and runs them.
 *
 * A block's language decides what happens to it: `ts`, `typescript`, `js` and `javascript`
 * blocks are compiled and run, every other language (`sh`, `json`, …) is prose. A marker
 * comment on the line before the opening fence changes that for one block:
 *
 *     <!-- readme-test: typecheck-only -->   compiled, not run (browser-only, needs Redis …)
 *
 * An unknown marker, or a marker that is not followed by a code block, is an error.
 */

/** What the README test does with a block. */
export type BlockMode = 'run' | 'typecheck-only'

/** A code block the README test compiles. */
export interface CodeBlock {
  /** The fence's language tag. */
  lang: string
  /** The block's text, without the fences. */
  code: string
  /** The 1-based README line of the block's first code line. */
  line: number
  mode: BlockMode
}

const CODE_LANGUAGES = new Set(['ts', 'typescript', 'js', 'javascript'])
const MODES: ReadonlySet<string> = new Set<BlockMode>(['typecheck-only'])
const MARKER = /^\s*<!--\s*readme-test:\s*([\w-]+)\s*-->\s*$/
const FENCE = /^(\s*)(`{3,}|~{3,})\s*([\w+-]*)/

/**
 * The TypeScript and JavaScript blocks of a Markdown text, in order.
 *
 * @example
 * extractBlocks('```ts\nconst a = 1\n```\n') // [{ lang: 'ts', code: 'const a = 1\n', line: 2, mode: 'run' }]
 */
export function extractBlocks(markdown: string, file = 'README.md'): CodeBlock[] {
  const lines = markdown.split(/\r?\n/)
  const blocks: CodeBlock[] = []
  let pending: { mode: BlockMode; line: number } | undefined
  for (let index = 0; index < lines.length; index++) {
    const text = lines[index] ?? ''
    const marker = MARKER.exec(text)
    if (marker) {
      const mode = marker[1] ?? ''
      if (!MODES.has(mode)) {
        throw new Error(`${file}:${index + 1}: unknown marker "readme-test: ${mode}"`)
      }
      pending = { mode: mode as BlockMode, line: index + 1 }
      continue
    }
    const fence = FENCE.exec(text)
    if (!fence) {
      if (pending && text.trim() !== '') {
        throw new Error(`${file}:${pending.line}: a readme-test marker must precede a code block`)
      }
      continue
    }
    const [, indent = '', ticks = '', lang = ''] = fence
    const body: string[] = []
    let end = index + 1
    while (end < lines.length && !(lines[end] ?? '').trim().startsWith(ticks)) {
      const line = lines[end] ?? ''
      body.push(line.startsWith(indent) ? line.slice(indent.length) : line)
      end++
    }
    if (end === lines.length) throw new Error(`${file}:${index + 1}: unterminated code block`)
    const language = lang.toLowerCase()
    if (CODE_LANGUAGES.has(language)) {
      blocks.push({
        lang: language,
        code: `${body.join('\n')}\n`,
        line: index + 2,
        mode: pending?.mode ?? 'run',
      })
    } else if (pending) {
      throw new Error(`${file}:${pending.line}: a readme-test marker on a ${lang || 'plain'} block`)
    }
    pending = undefined
    index = end
  }
  if (pending) {
    throw new Error(`${file}:${pending.line}: a readme-test marker must precede a code block`)
  }
  return blocks
}
