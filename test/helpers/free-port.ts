import { createServer } from 'node:net'

/**
 * A loopback TCP port that was free a moment ago: the OS picks it for a listener on port 0,
 * which is closed again before the port is returned. Callers retry on EADDRINUSE.
 */
export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address !== null ? address.port : 0
      server.close(() => port > 0 ? resolve(port) : reject(new Error('no port assigned')))
    })
  })
}
