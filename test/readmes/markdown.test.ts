import { describe, expect, it } from 'vitest'
import { extractBlocks } from './markdown.js'

const fence = '```'

describe('extractBlocks', () => {
  it('takes ts, typescript, js and javascript blocks with their first line, and leaves other languages', () => {
    const markdown = [
      '# title', // 1
      `${fence}sh`, // 2
      'pnpm add @reauth/core', // 3
      fence, // 4
      `${fence}ts`, // 5
      'const a = 1', // 6
      fence, // 7
      `${fence}json`, // 8
      '{}', // 9
      fence, // 10
      `${fence}js`, // 11
      'const b = 2', // 12
      fence, // 13
      `${fence}typescript`, // 14
      'const c = 3', // 15
      fence, // 16
    ].join('\n')
    expect(extractBlocks(markdown)).toEqual([
      { lang: 'ts', code: 'const a = 1\n', line: 6, mode: 'run' },
      { lang: 'js', code: 'const b = 2\n', line: 12, mode: 'run' },
      { lang: 'typescript', code: 'const c = 3\n', line: 15, mode: 'run' },
    ])
  })

  it('marks the block after a typecheck-only marker, and only that one', () => {
    const markdown = [
      '<!-- readme-test: typecheck-only -->',
      `${fence}ts`,
      'navigator.locks',
      fence,
      `${fence}ts`,
      'const a = 1',
      fence,
    ].join('\n')
    expect(extractBlocks(markdown).map((block) => block.mode)).toEqual(['typecheck-only', 'run'])
  })

  it('refuses an unknown marker, a marker before prose and a marker on a shell block', () => {
    expect(() => extractBlocks('<!-- readme-test: skip -->\n```ts\nx\n```\n', 'A.md')).toThrow(
      'A.md:1: unknown marker "readme-test: skip"',
    )
    expect(() => extractBlocks('<!-- readme-test: typecheck-only -->\nprose\n', 'A.md')).toThrow(
      'A.md:1: a readme-test marker must precede a code block',
    )
    expect(() =>
      extractBlocks('<!-- readme-test: typecheck-only -->\n```sh\nls\n```\n', 'A.md'),
    ).toThrow('A.md:1: a readme-test marker on a sh block')
  })

  it('refuses an unterminated block', () => {
    expect(() => extractBlocks('```ts\nconst a = 1\n', 'A.md')).toThrow(
      'A.md:1: unterminated code block',
    )
  })
})
