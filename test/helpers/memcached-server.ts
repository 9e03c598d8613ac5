import { execFileSync } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { connect } from 'node:net'
import { tmpdir, userInfo } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { freePort } from './free-port.js'
import { forgetTempDir, logTail, RedisProcess, trackTempDir } from './redis-process.js'

const MEMCACHED = '/usr/bin/memcached'
// Debian's sasl2-bin
const SASLPASSWD2 = '/usr/sbin/saslpasswd2'

/** A private memcached process on a loopback port; always `stop()` it in `t.teardown`. */
export interface MemcachedServer {
  readonly port: number
  /** `127.0.0.1:<port>`, as the `memcached.servers` option takes it */
  readonly address: string
  readonly pid: number
  stop(): Promise<void>
  /** Stops the process but keeps the port, for an outage of the test's own length; `revive()` ends it. */
  kill(): Promise<void>
  /** Starts the process `kill()` stopped, on the same port, empty. */
  revive(): Promise<void>
  /** SIGSTOP: the server stops answering but keeps its connections. */
  pause(): void
  /** SIGCONT after `pause()`. */
  resume(): void
  /** Sends one text-protocol command (not with `sasl`) and resolves to the reply, up to its last line. */
  command(line: string): Promise<string>
  /** The counters of `stats`, by name. */
  stats(): Promise<Record<string, number>>
}

export interface StartMemcachedOptions {
  /** `-S`: binary protocol only, and this user must log in (SASL PLAIN from a sasldb made by saslpasswd2) */
  sasl?: { username: string, password: string }
  /** `-I`: the largest item, e.g. `'2m'`; default 1 MB */
  maxItemSize?: string
  /** further arguments, e.g. `['-M', '-m', '2']` to refuse writes once 2 MB are used */
  args?: string[]
}

/**
 * Starts a private memcached (Debian's `memcached` package) on a free loopback port, in a temp
 * dir of its own (log, SASL configuration), stopped by PID.
 */
export async function startMemcached (options: StartMemcachedOptions = {}): Promise<MemcachedServer> {
  const dir = await mkdtemp(join(tmpdir(), 'frs-memcached-'))
  trackTempDir(dir)
  const env = options.sasl === undefined ? undefined : await saslConfig(dir, options.sasl)
  const logFile = join(dir, 'memcached.log')
  const port = await freePort()
  const argv = [
    '-l', '127.0.0.1', '-p', String(port), '-U', '0', '-c', '256', '-v',
    ...(options.maxItemSize === undefined ? [] : ['-I', options.maxItemSize]),
    ...(options.sasl === undefined ? [] : ['-S']),
    ...(options.args ?? []),
    // memcached refuses to run as root unless told which user to be
    ...(process.getuid?.() === 0 ? ['-u', userInfo().username] : [])
  ]
  let proc: RedisProcess | undefined
  const launch = async (): Promise<void> => {
    proc = await RedisProcess.spawn(argv, dir, logFile, MEMCACHED, env)
    await waitForPort(proc, port, logFile)
  }
  await launch()
  const running = (): RedisProcess => proc as RedisProcess
  return {
    port,
    address: `127.0.0.1:${port}`,
    get pid () { return running().pid },
    async stop () {
      await running().stop()
      await rm(dir, { recursive: true, force: true })
      forgetTempDir(dir)
    },
    async kill () { await running().stop() },
    revive: launch,
    pause () { running().pause() },
    resume () { running().signal('SIGCONT') },
    command: async (line) => await textCommand(port, line),
    async stats () {
      const reply = await textCommand(port, 'stats')
      return Object.fromEntries([...reply.matchAll(/^STAT (\S+) (\d+)\r$/gm)].map(([, name, value]) => [name, Number(value)]))
    }
  }
}

/** A sasldb with the one user, and the memcached.conf that names it (SASL_CONF_PATH). */
async function saslConfig (dir: string, { username, password }: { username: string, password: string }): Promise<NodeJS.ProcessEnv> {
  const db = join(dir, 'sasldb2')
  execFileSync(SASLPASSWD2, ['-p', '-a', 'memcached', '-c', '-f', db, username], { input: password })
  await writeFile(join(dir, 'memcached.conf'), `mech_list: plain\nsasldb_path: ${db}\n`)
  return { SASL_CONF_PATH: dir }
}

async function waitForPort (proc: RedisProcess, port: number, logFile: string): Promise<void> {
  const deadline = Date.now() + 10_000
  for (;;) {
    if (!proc.running) throw new Error(`memcached (port ${port}) exited during start-up; log tail:\n${logTail(logFile)}`)
    if (await accepts(port)) return
    if (Date.now() > deadline) {
      await proc.stop()
      throw new Error(`memcached (port ${port}) did not listen within 10 s; log tail:\n${logTail(logFile)}`)
    }
    await sleep(50)
  }
}

async function accepts (port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port }, () => { socket.destroy(); resolve(true) })
    socket.once('error', () => resolve(false))
  })
}

// the last line of each text-protocol reply: stats and retrievals end with END, the rest after one line
const LAST_LINE = /(?:^|\n)(?:END|STORED|NOT_STORED|EXISTS|NOT_FOUND|DELETED|TOUCHED|OK|ERROR|CLIENT_ERROR[^\n]*|SERVER_ERROR[^\n]*|HD[^\n]*|EN|NF|NS|EX|VERSION[^\n]*)\r\n$/

/** One text-protocol command on a connection of its own; `line` may carry a data block after `\r\n`. */
async function textCommand (port: number, line: string): Promise<string> {
  return await new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port })
    let reply = ''
    socket.setTimeout(5000, () => socket.destroy(new Error(`memcached did not answer ${line.split(' ')[0]}`)))
    socket.once('error', reject)
    socket.on('data', (chunk) => {
      reply += String(chunk)
      if (!LAST_LINE.test(reply)) return
      socket.destroy()
      resolve(reply)
    })
    socket.write(line + '\r\n')
  })
}

/**
 * The counters `fn` made the servers move, summed over them: reads (`cmd_get`, GAT included),
 * writes (`cmd_set`: ADD and REPLACE too), touches (`cmd_touch`: GAT and TOUCH), deletes
 * (`delete_hits` + `delete_misses`), without those of our own `stats` probe.
 * @example
 * t.same(await memcachedDelta([server], () => app.inject('/')), { cmd_get: 1, cmd_touch: 1 })
 */
export async function memcachedDelta (servers: MemcachedServer[], fn: () => Promise<unknown>): Promise<Record<string, number>> {
  const counted = async (): Promise<Record<string, number>> => {
    const all = await Promise.all(servers.map(async (server) => await server.stats()))
    const sum = (name: string): number => all.reduce((total, stats) => total + (stats[name] ?? 0), 0)
    return { get: sum('cmd_get'), set: sum('cmd_set'), touch: sum('cmd_touch'), delete: sum('delete_hits') + sum('delete_misses') }
  }
  const before = await counted()
  await fn()
  const after = await counted()
  return Object.fromEntries(Object.entries(after).map(([name, count]) => [name, count - before[name]]).filter(([, change]) => change !== 0))
}
