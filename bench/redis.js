import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'

const TRACE_END = 'bench:trace-end'

/** A free loopback port: listen on 0, read the port, close. */
export async function freePort () {
  const server = createServer().listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address()
  await new Promise((resolve) => server.close(resolve))
  return port
}

async function answers (port) {
  const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 })
  client.on('error', () => {})
  try {
    await client.connect()
    await client.ping()
    return true
  } catch {
    return false
  } finally {
    client.disconnect()
  }
}

/** Starts redis-server on a free port; `track` learns the child at once, so an exit can kill it. */
async function launch (dir, track) {
  const port = await freePort()
  const log = join(dir, 'redis.log')
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
    '--dir', dir, '--logfile', log], { stdio: 'ignore' })
  track(child)
  for (let waited = 0; waited < 5000; waited += 50) {
    if (child.exitCode !== null) break
    if (await answers(port)) return port
    await sleep(50)
  }
  child.kill('SIGKILL')
  let tail = ''
  try { tail = readFileSync(log, 'utf8').trim().split('\n').slice(-5).join('\n') } catch {}
  // another process may have taken the port between freePort() and the bind: the caller retries
  throw new Error(`redis-server did not start on port ${port}:\n${tail}`)
}

/**
 * A private redis-server (loopback, free port, own temp dir, no persistence), so command counts
 * see the benchmark's traffic only. Stopped by PID, never by name.
 */
export async function startRedis () {
  const dir = mkdtempSync(join(tmpdir(), 'fastify-redis-sessions-bench-'))
  let child
  // an error or Ctrl-C skips stop(): the server (by PID) and its dir go anyway
  const cleanUp = () => {
    child?.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  }
  process.on('exit', cleanUp)
  let port
  for (let attempt = 1; port === undefined; attempt++) {
    try {
      port = await launch(dir, (spawned) => { child = spawned })
    } catch (err) {
      if (attempt === 3) throw err
    }
  }
  const admin = new Redis({ port, host: '127.0.0.1' })

  return {
    url: `redis://127.0.0.1:${port}`,

    async version () {
      return /redis_version:(\S+)/.exec(await admin.info('server'))[1]
    },

    /** Call counts per command name from `INFO commandstats` (commands inside scripts included). */
    async commandCounts () {
      const counts = new Map()
      for (const [, name, calls] of (await admin.info('commandstats')).matchAll(/^cmdstat_(\S+?):calls=(\d+)/gm)) {
        counts.set(name, Number(calls))
      }
      return counts
    },

    /** CPU µs (user + system) the Redis process has used: its share of each request, network I/O included. */
    async cpuMicros () {
      const info = await admin.info('cpu')
      const seconds = (name) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)[1])
      return Math.round((seconds('used_cpu_user') + seconds('used_cpu_sys')) * 1e6)
    },

    /** Drops every key between runs, so each run starts from the same empty server. */
    async flush () {
      await admin.flushall()
    },

    /**
     * Runs `fn` with MONITOR attached and resolves to the number of commands clients sent: the
     * commands Lua scripts ran are left out. MONITOR runs in redis-cli, not on an ioredis
     * client, whose command queue MONITOR's stream of lines can upset.
     */
    async topLevelCommands (fn) {
      const monitor = spawn('redis-cli', ['-h', '127.0.0.1', '-p', String(port), 'monitor'], { stdio: ['ignore', 'pipe', 'inherit'] })
      const lines = createInterface({ input: monitor.stdout })
      let sent = 0
      let started
      let ended
      const start = new Promise((resolve) => { started = resolve })
      const end = new Promise((resolve) => { ended = resolve })
      // `<time> [<db> <client address>] "command" …`, or `[<db> lua]` for what a script ran
      lines.on('line', (line) => {
        if (line === 'OK') started()
        else if (line.includes(`"echo" "${TRACE_END}"`)) ended()
        else if (/^\d+\.\d+ \[\d+ (?!lua\])/.test(line)) sent++
      })
      try {
        await start
        await fn()
        // MONITOR lines arrive asynchronously: the marker comes after every command of the run
        await admin.echo(TRACE_END)
        await end
      } finally {
        monitor.kill()
      }
      return sent
    },

    async stop () {
      admin.disconnect()
      const exited = once(child, 'exit')
      child.kill('SIGTERM')
      await exited
      process.off('exit', cleanUp)
      rmSync(dir, { recursive: true, force: true })
    }
  }
}

/** Per-command increases between two `commandCounts()` snapshots, without the harness's own commands. */
export function countsBetween (before, after) {
  const delta = new Map()
  for (const [name, calls] of after) {
    const increase = calls - (before.get(name) ?? 0)
    if (increase > 0 && !HARNESS_COMMANDS.has(name)) delta.set(name, increase)
  }
  return delta
}

const HARNESS_COMMANDS = new Set(['info', 'flushall', 'monitor', 'echo'])
