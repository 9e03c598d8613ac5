import { Redis, type RedisOptions } from 'ioredis'
import { freePort } from './free-port.js'
import type { RedisServer, StartRedisOptions } from './redis-server.js'

/**
 * Last resort when redis-server is not on PATH: a `redis:7` container through testcontainers
 * (loaded lazily, so machines with Redis installed never pay for it). Standalone only.
 */
export async function startContainer (opts: StartRedisOptions = {}): Promise<RedisServer> {
  const needsLocal = (['tls', 'tlsOnly', 'requireClientCert', 'unixSocket', 'cluster'] as const).filter(k => opts[k])
  if (needsLocal.length > 0) {
    throw new Error(`redis-server not found on PATH, and ${needsLocal.join(', ')} need a local redis-server`)
  }
  let testcontainers: typeof import('testcontainers')
  try {
    testcontainers = await import('testcontainers')
  } catch (err) {
    // testcontainers 12 pulls undici 8, which needs Node >= 22.19 (zlib zstd) to even load.
    throw new Error(`redis-server not found on PATH, and testcontainers cannot load on Node ${process.version}: ${String(err)}`, { cause: err })
  }
  const { GenericContainer, Wait } = testcontainers
  const command = ['redis-server', '--save', '', '--appendonly', 'no']
  if (opts.password !== undefined) command.push('--requirepass', opts.password)
  // `user …` directives are accepted on the command line like any config line.
  for (const line of opts.acl ?? []) command.push('--user', line.replace(/^user\s+/, ''))
  for (const line of opts.config ?? []) command.push(...line.split(/\s+/).map((w, i) => i === 0 ? `--${w}` : w))
  command.push(...(opts.args ?? []))
  // A fixed host port, so restart() keeps it.
  const hostPort = await freePort()
  const container = await new GenericContainer('redis:7')
    .withExposedPorts({ container: 6379, host: hostPort })
    .withCommand(command)
    .withWaitStrategy(Wait.forLogMessage(/Ready to accept connections/))
    .start()
    .catch((err: unknown) => {
      throw new Error(`redis-server not found on PATH, and no redis:7 container could start: ${String(err)}`, { cause: err })
    })
  const host = container.getHost()
  const auth = opts.password === undefined ? '' : `:${encodeURIComponent(opts.password)}@`
  const cannot = (what: string): never => {
    throw new Error(`${what} needs a local redis-server (this server runs in Docker)`)
  }
  let stopping: Promise<unknown> | undefined
  return {
    host,
    port: hostPort,
    url: `redis://${auth}${host}:${hostPort}`,
    dir: '',
    async stop () {
      stopping ??= container.stop()
      await stopping
    },
    async restart () {
      await container.restart()
    },
    kill: async () => cannot('kill()'),
    revive: async () => cannot('revive()'),
    pause: () => cannot('pause()'),
    resume: () => cannot('resume()'),
    admin: (options: RedisOptions = {}) => new Redis({ host, port: hostPort, password: opts.password, ...options })
  }
}
