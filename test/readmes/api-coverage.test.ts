/**
 * The package READMEs written against the source name every export, and every member of the
 * interfaces users fill in or read (options, methods, events, counters, contracts), in code
 * (an inline code span or a code block). A new option or export fails here until it is
 * documented; a renamed one fails the README code blocks (readmes.test.ts).
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { describe, expect, it } from 'vitest'

const root = fileURLToPath(new URL('../..', import.meta.url))

const documented = [
  {
    name: 'core',
    interfaces: [
      'EngineOptions',
      'Engine',
      'EngineEvents',
      'EngineStats',
      'RefreshContext',
      'TokenSet',
      'TokenStore',
      'RefreshLock',
      'ReplayQueueOptions',
      'ParseTokenResponseOptions',
      'OAuthErrorFields',
      'RefreshErrorFields',
      'Logger',
    ],
  },
  { name: 'fetch', interfaces: ['CreateFetchOptions', 'ReauthRequestInit'] },
]

/** The non-test TypeScript sources of a package. */
function sources(name: string): ts.SourceFile[] {
  const dir = join(root, 'packages', name, 'src')
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.ts') && !/\.test(-d)?\.ts$/.test(file))
    .map((file) =>
      ts.createSourceFile(file, readFileSync(join(dir, file), 'utf8'), ts.ScriptTarget.Latest),
    )
}

/** The names `src/index.ts` exports (values and types). */
function exportNames(name: string): string[] {
  const index = sources(name).find((file) => file.fileName === 'index.ts')
  if (!index) throw new Error(`packages/${name}/src/index.ts not found`)
  const names: string[] = []
  for (const statement of index.statements) {
    if (ts.isExportDeclaration(statement) && statement.exportClause) {
      if (ts.isNamedExports(statement.exportClause)) {
        for (const element of statement.exportClause.elements) names.push(element.name.text)
      }
    }
  }
  return names
}

/** The property and method names of an interface declared in the package's sources. */
function members(name: string, interfaceName: string): string[] {
  for (const file of sources(name)) {
    for (const statement of file.statements) {
      if (ts.isInterfaceDeclaration(statement) && statement.name.text === interfaceName) {
        return statement.members.flatMap((member) =>
          member.name && ts.isIdentifier(member.name) ? [member.name.text] : [],
        )
      }
    }
  }
  throw new Error(`interface ${interfaceName} not found in packages/${name}/src`)
}

/** Every word written as code in a Markdown text: inline code spans and code blocks. */
function codeWords(markdown: string): Set<string> {
  const code = [
    ...markdown.matchAll(/```[^\n]*\n([\s\S]*?)```/g),
    ...markdown.replace(/```[\s\S]*?```/g, '').matchAll(/`([^`]+)`/g),
  ].map((match) => match[1] ?? '')
  return new Set(code.join('\n').match(/[A-Za-z_$][\w$]*/g) ?? [])
}

describe.each(documented)('packages/$name/README.md', ({ name, interfaces }) => {
  const words = codeWords(readFileSync(join(root, 'packages', name, 'README.md'), 'utf8'))

  it('names every export of the package', () => {
    const exports = exportNames(name)
    expect(exports.length).toBeGreaterThan(0)
    expect(exports.filter((exported) => !words.has(exported))).toEqual([])
  })

  it.each(interfaces)('names every member of %s', (interfaceName) => {
    const names = members(name, interfaceName)
    expect(names.length).toBeGreaterThan(0)
    expect(names.filter((member) => !words.has(member))).toEqual([])
  })
})
