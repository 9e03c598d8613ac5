import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { connect } from 'node:net'
import { userInfo } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import { freePort } from './redis.js'

/** One text-protocol command on a connection of its own; resolves to the reply up to `last`. */
async function command (port, line, last = /(END|OK)\r\n$/) {
  return await new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1' })
    let reply = ''
    socket.once('error', reject)
    socket.on('data', (chunk) => {
      reply += chunk
      if (last.test(reply)) {
        socket.destroy()
        resolve(reply)
      }
    })
    socket.write(line + '\r\n')
  })
}

// what each counter of `stats` counts, in the harness's command names
const COUNTERS = { cmd_get: 'get', cmd_set: 'set', cmd_touch: 'touch', delete_hits: 'delete', delete_misses: 'delete' }

/**
 * A private memcached (loopback, free port, 1 GB so no session is evicted during a run), with
 * the interface of `startRedis()` that the comparison uses. Stopped by PID, never by name.
 */
export async function startMemcached () {
  const port = await freePort()
  const child = spawn('memcached', ['-l', '127.0.0.1', '-p', String(port), '-U', '0', '-m', '1024', '-t', '1',
    ...(process.getuid?.() === 0 ? ['-u', userInfo().username] : [])], { stdio: 'ignore' })
  const cleanUp = () => child.kill('SIGKILL')
  process.on('exit', cleanUp)
  for (let waited = 0; ; waited += 50) {
    if (await command(port, 'version', /\r\n$/).then(() => true, () => false)) break
    if (waited > 5000 || child.exitCode !== null) throw new Error(`memcached did not start on port ${port}`)
    await sleep(50)
  }
  const stats = async () => Object.fromEntries([...(await command(port, 'stats')).matchAll(/^STAT (\S+) (\S+)\r$/gm)].map(([, name, value]) => [name, value]))

  return {
    address: `127.0.0.1:${port}`,

    async version () {
      return (await stats()).version
    },

    /** Calls per command: reads (GAT counts as a touch), writes (ADD and REPLACE too), touches, deletes. */
    async commandCounts () {
      const counts = new Map()
      for (const [stat, value] of Object.entries(await stats())) {
        const name = COUNTERS[stat]
        if (name !== undefined) counts.set(name, (counts.get(name) ?? 0) + Number(value))
      }
      return counts
    },

    /** CPU µs (user + system) the memcached process has used. */
    async cpuMicros () {
      const { rusage_user: user, rusage_system: system } = await stats()
      return Math.round((Number(user) + Number(system)) * 1e6)
    },

    async flush () {
      await command(port, 'flush_all')
    },

    /** The commands clients sent while `fn` ran (memcached counts each; `stats` is not counted). */
    async topLevelCommands (fn) {
      const before = await this.commandCounts()
      await fn()
      const after = await this.commandCounts()
      let sent = 0
      for (const [name, calls] of after) sent += calls - (before.get(name) ?? 0)
      return sent
    },

    async stop () {
      const exited = once(child, 'exit')
      child.kill('SIGTERM')
      await exited
      process.off('exit', cleanUp)
    }
  }
}
