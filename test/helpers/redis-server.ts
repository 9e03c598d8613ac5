import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis, type RedisOptions } from 'ioredis'
import { freePort } from './free-port.js'
import { findRedisServer, forgetTempDir, PortTakenError, RedisProcess, trackTempDir, waitUntilUp } from './redis-process.js'
import type { TlsFiles } from './tls.js'

/** A Redis server the test may use; always `stop()` it in `t.teardown`. */
export interface RedisServer {
  /** `127.0.0.1` for private servers; whatever `REDIS_URL` or Docker says otherwise. */
  readonly host: string
  /** The port clients use: the TLS port when `tlsOnly`, else the plain one. */
  readonly port: number
  /** The TLS port, when started with `tls`. */
  readonly tlsPort?: number
  /** `redis://` or `rediss://` (TLS only), with the `password` when one is set. */
  readonly url: string
  /** The current process id; changes on `restart()`. Absent for shared or Docker servers. */
  readonly pid?: number
  readonly socketPath?: string
  /** The server's own temp dir (config, log, unix socket), removed by `stop()`. */
  readonly dir: string
  readonly logFile?: string
  stop(): Promise<void>
  /** Stops the process and starts it again on the same port; data is gone (no persistence). */
  restart(): Promise<void>
  /** Stops the process but keeps port and dir, for an outage of the test's own length; `revive()` ends it. */
  kill(): Promise<void>
  /** Starts the process `kill()` stopped, on the same port; data is gone (no persistence). */
  revive(): Promise<void>
  /** SIGSTOP: the server stops answering but keeps its connections. */
  pause(): void
  /** SIGCONT after `pause()`. */
  resume(): void
  /** A new client with the right auth and TLS; the caller quits it. `options` override. */
  admin(options?: RedisOptions): Redis
}

/** Options of {@link startRedis}. */
export interface StartRedisOptions {
  /** Extra command-line arguments, e.g. `['--maxmemory', '10mb']`. */
  args?: string[]
  /** Extra redis.conf lines; unlike `args` they follow `CONFIG REWRITE` across `restart()`. */
  config?: string[]
  /** `requirepass`: the password of the `default` user. */
  password?: string
  /** ACL file lines, e.g. `'user app on >secret ~sess:* +@all -@dangerous'`. */
  acl?: string[]
  /** May return the server named by `REDIS_URL` (only when no other option shapes the server). */
  shared?: boolean
  tls?: TlsFiles
  /** Only the TLS port listens (`--port 0`). */
  tlsOnly?: boolean
  /** `tls-auth-clients yes`: clients must present a certificate from the CA. */
  requireClientCert?: boolean
  unixSocket?: boolean
  /** A cluster node: `cluster-enabled yes` with its own bus port. */
  cluster?: boolean
}

/** Internal: what sentinel.ts needs beyond {@link StartRedisOptions}. */
export interface LaunchOptions extends StartRedisOptions {
  /** Run as a sentinel with these `sentinel …` lines. */
  sentinel?: string[]
}

function tlsLines (tls: TlsFiles, requireClientCert: boolean): string[] {
  return [
    `tls-cert-file ${tls.serverCert}`,
    `tls-key-file ${tls.serverKey}`,
    `tls-ca-cert-file ${tls.caCert}`,
    `tls-auth-clients ${requireClientCert ? 'yes' : 'no'}`,
    // Replication, sentinel and cluster-bus links speak TLS too.
    'tls-replication yes',
    'tls-cluster yes'
  ]
}

const quote = (value: string): string => JSON.stringify(value)

class LocalRedisServer implements RedisServer {
  readonly host = '127.0.0.1'
  readonly dir: string
  readonly logFile: string
  readonly socketPath?: string
  readonly #opts: LaunchOptions
  readonly #confFile: string
  #plainPort = 0
  #tlsPort = 0
  #proc?: RedisProcess
  #stopping?: Promise<void>

  constructor (dir: string, opts: LaunchOptions) {
    this.dir = dir
    this.#opts = opts
    this.logFile = join(dir, 'redis.log')
    this.#confFile = join(dir, opts.sentinel ? 'sentinel.conf' : 'redis.conf')
    if (opts.unixSocket) this.socketPath = join(dir, 'redis.sock')
  }

  get port (): number { return this.#opts.tlsOnly ? this.#tlsPort : this.#plainPort }
  get tlsPort (): number | undefined { return this.#opts.tls ? this.#tlsPort : undefined }
  get pid (): number | undefined { return this.#proc?.pid }

  get url (): string {
    const auth = this.#opts.password === undefined ? '' : `:${encodeURIComponent(this.#opts.password)}@`
    return `${this.#opts.tlsOnly ? 'rediss' : 'redis'}://${auth}${this.host}:${this.port}`
  }

  /** Picks ports, writes the config and starts; a port taken meanwhile means another try. */
  async start (): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#writeConfig()
        await this.#launch()
        return
      } catch (err) {
        if (!(err instanceof PortTakenError) || attempt >= 5) throw err
      }
    }
  }

  async #writeConfig (): Promise<void> {
    const o = this.#opts
    const [plain, tls, bus] = await Promise.all([
      o.tlsOnly ? 0 : freePort(),
      o.tls ? freePort() : 0,
      o.cluster ? freePort() : 0
    ])
    this.#plainPort = plain
    this.#tlsPort = tls
    // A fresh log per attempt, so an old "Address already in use" is not read as the cause.
    await writeFile(this.logFile, '')
    const lines = [
      'bind 127.0.0.1',
      `port ${plain}`,
      `dir ${quote(this.dir)}`,
      'logfile ""'
    ]
    if (o.tls) lines.push(`tls-port ${tls}`, ...tlsLines(o.tls, o.requireClientCert === true))
    if (o.sentinel) {
      if (o.password !== undefined) lines.push(`requirepass ${quote(o.password)}`)
      lines.push(...o.sentinel)
    } else {
      // A master waits for lagging replicas on SIGTERM (Redis 7), and 5 s for more replicas
      // before a diskless full sync; tests want neither.
      lines.push('shutdown-timeout 0', 'repl-diskless-sync-delay 0')
      if (o.password !== undefined) lines.push(`masterauth ${quote(o.password)}`)
      if (o.acl) {
        // An aclfile silently overrides requirepass, so the password goes into the file.
        const acl = [...o.acl]
        if (o.password !== undefined && !acl.some(l => /^user\s+default\s/.test(l))) {
          acl.unshift(`user default on >${o.password} ~* &* +@all`)
        }
        await writeFile(join(this.dir, 'users.acl'), acl.join('\n') + '\n')
        lines.push(`aclfile ${quote(join(this.dir, 'users.acl'))}`)
      } else if (o.password !== undefined) {
        lines.push(`requirepass ${quote(o.password)}`)
      }
      if (this.socketPath) lines.push(`unixsocket ${quote(this.socketPath)}`, 'unixsocketperm 700')
      if (o.cluster) {
        lines.push('cluster-enabled yes', 'cluster-config-file nodes.conf', 'cluster-node-timeout 2000', `cluster-port ${bus}`)
      }
    }
    lines.push(...(o.config ?? []))
    await writeFile(this.#confFile, lines.join('\n') + '\n')
  }

  async #launch (): Promise<void> {
    const argv = this.#opts.sentinel
      ? [this.#confFile, '--sentinel']
      : [this.#confFile, '--save', '', '--appendonly', 'no', '--daemonize', 'no', ...(this.#opts.args ?? [])]
    const proc = await RedisProcess.spawn(argv, this.dir, this.logFile)
    this.#proc = proc
    const tls = this.#opts.tlsOnly && this.#opts.tls ? { cert: this.#opts.tls.pem.clientCert, key: this.#opts.tls.pem.clientKey } : false
    await waitUntilUp(proc, this.port, this.logFile, tls)
  }

  async stop (): Promise<void> {
    this.#stopping ??= (async () => {
      await this.#proc?.stop()
      forgetTempDir(this.dir)
      await rm(this.dir, { recursive: true, force: true })
    })()
    await this.#stopping
  }

  async restart (): Promise<void> {
    await this.kill()
    await this.revive()
  }

  async kill (): Promise<void> {
    if (this.#stopping) throw new Error('kill() or restart() after stop()')
    await this.#proc?.stop()
  }

  async revive (): Promise<void> {
    if (this.#stopping) throw new Error('revive() or restart() after stop()')
    await this.#launch()
  }

  pause (): void { this.#proc?.pause() }
  resume (): void { this.#proc?.signal('SIGCONT') }

  admin (options: RedisOptions = {}): Redis {
    const o = this.#opts
    // every test certificate names localhost, not all of them 127.0.0.1
    const tls = o.tlsOnly && o.tls
      ? { ca: o.tls.pem.ca, cert: o.tls.pem.clientCert, key: o.tls.pem.clientKey, servername: 'localhost' }
      : undefined
    return new Redis({ host: this.host, port: this.port, password: o.password, tls, ...options })
  }
}

/** Internal: a private redis-server (or sentinel) process in its own temp dir. */
export async function launchRedis (opts: LaunchOptions = {}): Promise<RedisServer> {
  if ((opts.tlsOnly || opts.requireClientCert) && !opts.tls) throw new Error('tlsOnly and requireClientCert need tls: await makeTlsFiles()')
  const dir = await mkdtemp(join(tmpdir(), 'frs-redis-'))
  trackTempDir(dir)
  const server = new LocalRedisServer(dir, opts)
  try {
    await server.start()
  } catch (err) {
    await server.stop()
    throw err
  }
  return server
}

function sharedServer (url: string): RedisServer {
  const parsed = new URL(url)
  const unsupported = (what: string): never => {
    throw new Error(`${what} is not possible on the shared REDIS_URL server`)
  }
  return {
    host: parsed.hostname,
    port: Number(parsed.port || 6379),
    url,
    dir: '',
    async stop () {},
    async restart () { unsupported('restart()') },
    async kill () { unsupported('kill()') },
    async revive () { unsupported('revive()') },
    pause: () => unsupported('pause()'),
    resume: () => unsupported('resume()'),
    admin: (options = {}) => new Redis(url, options)
  }
}

/**
 * Starts a standalone Redis for one test: `REDIS_URL` when `shared` and nothing else is asked
 * for, else a private `redis-server` from PATH, else a `redis:7` container (testcontainers).
 * @example
 * const redis = await startRedis({ password: 'secret' })
 * t.teardown(() => redis.stop())
 */
export async function startRedis (opts: StartRedisOptions = {}): Promise<RedisServer> {
  const { shared, ...shaping } = opts
  const envUrl = process.env.REDIS_URL
  if (shared && envUrl && Object.values(shaping).every(v => v === undefined)) return sharedServer(envUrl)
  if (findRedisServer() !== undefined) return await launchRedis(shaping)
  const { startContainer } = await import('./container.js')
  return await startContainer(shaping)
}

/** Runs `fn` with a short-lived admin client that gives up at once instead of retrying. */
export async function withAdmin<T> (server: RedisServer, fn: (client: Redis) => Promise<T>): Promise<T> {
  const client = server.admin({ lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
  try {
    await client.connect()
    return await fn(client)
  } finally {
    client.disconnect()
  }
}
