import { spawn, type ChildProcess } from 'node:child_process'
import { accessSync, closeSync, constants, openSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { connect as netConnect, type Socket } from 'node:net'
import { delimiter, join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { connect as tlsConnect } from 'node:tls'

/** Client certificate material for probing servers that demand one. */
export interface ProbeTls {
  cert: string
  key: string
}

const children = new Set<ChildProcess>()
const tempDirs = new Set<string>()
let hooksInstalled = false

/** SIGKILL every child still running, and drop temp dirs, so a crashed test leaks nothing. */
function reap (): void {
  for (const child of children) {
    try { child.kill('SIGKILL') } catch {}
  }
  children.clear()
  for (const dir of tempDirs) {
    try { rmSync(dir, { recursive: true, force: true }) } catch {}
  }
  tempDirs.clear()
}

function installHooks (): void {
  if (hooksInstalled) return
  hooksInstalled = true
  process.on('exit', reap)
  // A signal ends the process without 'exit'. Reap, then re-raise so the default action (or
  // tap's signal-exit handler, which only acts once it is the last listener) still happens.
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGALRM'] as const) {
    const onSignal = (): void => {
      reap()
      process.removeListener(sig, onSignal)
      process.kill(process.pid, sig)
    }
    process.on(sig, onSignal)
  }
}

/** Registers a temp dir to be removed at exit unless {@link forgetTempDir} ran first. */
export function trackTempDir (dir: string): void {
  installHooks()
  tempDirs.add(dir)
}

export function forgetTempDir (dir: string): void {
  tempDirs.delete(dir)
}

let redisServerBin: string | null | undefined

/** Absolute path of `redis-server` on PATH, or undefined. */
export function findRedisServer (): string | undefined {
  if (redisServerBin === undefined) {
    redisServerBin = null
    for (const dir of (process.env.PATH ?? '').split(delimiter)) {
      if (dir === '') continue
      const candidate = join(dir, 'redis-server')
      try {
        accessSync(candidate, constants.X_OK)
        redisServerBin = candidate
        break
      } catch {}
    }
  }
  return redisServerBin ?? undefined
}

export function requireRedisServer (what: string): string {
  const bin = findRedisServer()
  if (bin === undefined) {
    throw new Error(`redis-server not found on PATH: ${what} needs a local redis-server (install Redis 7)`)
  }
  return bin
}

/** The last lines of a log file, for error messages. */
export function logTail (file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n')
  } catch {
    return '(no log)'
  }
}

/** One redis-server child process, killed by PID only. */
export class RedisProcess {
  readonly pid: number
  readonly exited: Promise<void>
  readonly #child: ChildProcess

  private constructor (child: ChildProcess, pid: number) {
    this.#child = child
    this.pid = pid
    this.exited = new Promise<void>(resolve => {
      if (!this.running) resolve()
      else child.once('exit', () => resolve())
    }).then(() => { children.delete(child) })
  }

  /** Spawns `redis-server argv…` (or `bin argv…`) in `dir`, stdout and stderr appended to `logFile`. */
  static async spawn (argv: string[], dir: string, logFile: string, bin = requireRedisServer('this helper'), env?: NodeJS.ProcessEnv): Promise<RedisProcess> {
    installHooks()
    const fd = openSync(logFile, 'a')
    let child: ChildProcess
    try {
      child = spawn(bin, argv, { cwd: dir, stdio: ['ignore', fd, fd], env: env === undefined ? undefined : { ...process.env, ...env } })
    } finally {
      closeSync(fd)
    }
    const pid = child.pid
    if (pid === undefined) {
      const err = await new Promise<Error>(resolve => child.once('error', resolve))
      throw new Error(`cannot start ${bin}: ${err.message}`, { cause: err })
    }
    children.add(child)
    return new RedisProcess(child, pid)
  }

  get running (): boolean {
    return this.#child.exitCode === null && this.#child.signalCode === null
  }

  signal (sig: NodeJS.Signals): void {
    if (this.running) process.kill(this.pid, sig)
  }

  /**
   * SIGSTOP, returning once every thread has stopped: a thread stops only when it next looks at
   * its signals, so until then a worker thread (memcached's, Redis's I/O threads) may answer one
   * more request. A stop takes microseconds; Linux tells it in /proc (elsewhere this returns at once).
   */
  pause (): void {
    this.signal('SIGSTOP')
    const deadline = Date.now() + 1000
    while (!this.#stopped() && Date.now() < deadline) { /* wait: callers expect silence from the next request on */ }
  }

  #stopped (): boolean {
    const tasks = `/proc/${this.pid}/task`
    try {
      return readdirSync(tasks).every((task) => /^\d+ \(.*\) [Tt] /s.test(readFileSync(join(tasks, task, 'stat'), 'utf8')))
    } catch {
      return true
    }
  }

  /** SIGTERM (and SIGCONT, in case it is paused), SIGKILL after `graceMs`, resolves on exit. */
  async stop (graceMs = 3000): Promise<void> {
    if (this.running) {
      this.signal('SIGTERM')
      this.signal('SIGCONT')
      const timer = setTimeout(() => this.signal('SIGKILL'), graceMs)
      await this.exited
      clearTimeout(timer)
    }
    await this.exited
  }
}

/** Sends PING and resolves with the first reply line; any reply but -LOADING means "up". */
export async function ping (port: number, tls?: ProbeTls | false, timeoutMs = 1000): Promise<string> {
  return await new Promise((resolve, reject) => {
    const socket: Socket = tls
      ? tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false, cert: tls.cert, key: tls.key })
      : netConnect({ host: '127.0.0.1', port })
    let data = ''
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error('PING timed out')))
    socket.on('error', reject)
    socket.on('close', () => reject(new Error('connection closed before a reply')))
    socket.on('data', chunk => {
      data += String(chunk)
      const end = data.indexOf('\r\n')
      if (end >= 0) {
        resolve(data.slice(0, end))
        socket.destroy()
      }
    })
    socket.write('PING\r\n')
  })
}

/** Thrown when redis-server exits during start-up because its port was taken meanwhile. */
export class PortTakenError extends Error {}

/** Waits until `proc` answers PING on `port`; a clear error with the log tail otherwise. */
export async function waitUntilUp (proc: RedisProcess, port: number, logFile: string, tls?: ProbeTls | false, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let last = ''
  for (;;) {
    if (!proc.running) {
      const tail = logTail(logFile)
      const Err = tail.includes('Address already in use') ? PortTakenError : Error
      throw new Err(`redis-server (port ${port}) exited during start-up; log tail:\n${tail}`)
    }
    try {
      const reply = await ping(port, tls)
      if (!reply.startsWith('-LOADING')) return
      last = reply
    } catch (err) {
      last = err instanceof Error ? err.message : String(err)
    }
    if (Date.now() > deadline) {
      await proc.stop()
      throw new Error(`redis-server (port ${port}) did not answer PING within ${timeoutMs} ms (${last}); log tail:\n${logTail(logFile)}`)
    }
    await sleep(50)
  }
}
