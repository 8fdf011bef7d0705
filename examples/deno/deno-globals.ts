// The little of Deno's global API main.ts uses, so the repository's tsc checks main.ts
// (Deno never loads this file: it has its own types).
declare global {
  namespace Deno {
    const env: { get(name: string): string | undefined }
    function exit(code?: number): never
  }
}

export {}
