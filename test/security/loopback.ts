/** Two loopback HTTP servers on different ports: two origins, for redirect tests. */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface Hit {
  path: string
  authorization: string | undefined
}

export interface Loopback {
  origin: string
  hits: Hit[]
  close(): Promise<void>
}

export async function listen(
  handle: (request: IncomingMessage, response: ServerResponse, hits: Hit[]) => void,
): Promise<Loopback> {
  const hits: Hit[] = []
  const server: Server = createServer((request, response) => {
    hits.push({ path: request.url ?? '', authorization: request.headers.authorization })
    // drain the body so keep-alive sockets stay usable
    request.resume()
    request.on('end', () => handle(request, response, hits))
  })
  server.keepAliveTimeout = 1_000
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    origin: `http://127.0.0.1:${port}`,
    hits,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
