import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import { freePort } from './redis.js'

// Private redis-server and sentinel processes for bench/faults.js: loopback only, free ports,
// one temp dir, no persistence; stopped by PID (never by name) when the bench ends or crashes.

const NAME = 'mymaster'
const children = new Set()
process.on('exit', () => { for (const child of children) child.kill('SIGKILL') })

/** Runs `fn` with a short-lived client that gives up at once instead of retrying. */
async function withClient (port, fn) {
  const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, commandTimeout: 2000 })
  client.on('error', () => {})
  try {
    await client.connect()
    return await fn(client)
  } finally {
    client.disconnect()
  }
}

async function waitFor (what, check, timeout = 30_000) {
  const deadline = Date.now() + timeout
  let last
  for (;;) {
    try {
      if (await check()) return
      last = undefined
    } catch (err) {
      last = err
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? ': ' + last.message : ''}`)
    await sleep(100)
  }
}

const fields = (flat) => {
  const out = {}
  for (let i = 0; i + 1 < flat.length; i += 2) out[flat[i]] = String(flat[i + 1])
  return out
}

/**
 * One redis-server (or sentinel) with its config file in `dir`; `start()` again after `stop()`
 * brings it back on the same port with whatever the config file says by then (Sentinel rewrites it).
 */
class Node {
  constructor (dir, name, port, lines, sentinel) {
    this.port = port
    this.name = name
    this.sentinel = sentinel
    this.conf = join(dir, name + '.conf')
    this.log = join(dir, name + '.log')
    writeFileSync(this.conf, ['bind 127.0.0.1', `port ${port}`, `dir "${dir}"`, `logfile "${this.log}"`, ...lines].join('\n') + '\n')
    this.child = undefined
  }

  async start () {
    const args = this.sentinel ? [this.conf, '--sentinel'] : [this.conf, '--save', '', '--appendonly', 'no']
    const child = spawn('redis-server', args, { stdio: 'ignore' })
    children.add(child)
    child.once('exit', () => children.delete(child))
    this.child = child
    try {
      await waitFor(`${this.name} on port ${this.port}`, async () => {
        if (child.exitCode !== null) throw new Error('exited')
        return await withClient(this.port, async (c) => await c.ping() === 'PONG')
      }, 10_000)
    } catch (err) {
      let tail = ''
      try { tail = readFileSync(this.log, 'utf8').trim().split('\n').slice(-5).join('\n') } catch {}
      throw new Error(`${err.message}\n${tail}`)
    }
  }

  /** SIGTERM (a clean shutdown) or SIGKILL (a crash); resolves once the process is gone. */
  async stop (signal = 'SIGTERM') {
    const child = this.child
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return
    const exited = once(child, 'exit')
    child.kill(signal)
    await exited
  }

  async role () {
    return await withClient(this.port, async (c) => String((await c.call('ROLE'))[0]))
  }

  async inSync () {
    return await withClient(this.port, async (c) => (await c.info('replication')).includes('master_link_status:up'))
  }
}

/** A standalone redis-server. */
export async function startStandalone () {
  const dir = mkdtempSync(join(tmpdir(), 'frs-faults-'))
  const node = new Node(dir, 'redis', await freePort(), ['shutdown-timeout 0'], false)
  await node.start()
  return {
    url: `redis://127.0.0.1:${node.port}`,
    node,
    async stop () {
      await node.stop('SIGKILL')
      rmSync(dir, { recursive: true, force: true })
    }
  }
}

/**
 * A master, a replica and three sentinels (quorum 2, down after 1 s), ready when returned.
 * `master` and `replica` follow what the sentinels say.
 */
export async function startSentinelGroup () {
  const dir = mkdtempSync(join(tmpdir(), 'frs-faults-'))
  const base = ['shutdown-timeout 0', 'repl-diskless-sync-delay 0', 'repl-diskless-sync yes']
  const a = new Node(dir, 'node-a', await freePort(), base, false)
  await a.start()
  const b = new Node(dir, 'node-b', await freePort(), [...base, `replicaof 127.0.0.1 ${a.port}`], false)
  await b.start()
  await waitFor('the replica in sync', async () => await b.inSync())
  const sentinelLines = [
    'sentinel resolve-hostnames no',
    `sentinel monitor ${NAME} 127.0.0.1 ${a.port} 2`,
    `sentinel down-after-milliseconds ${NAME} 1000`,
    `sentinel failover-timeout ${NAME} 5000`
  ]
  const sentinels = []
  for (let i = 0; i < 3; i++) sentinels.push(new Node(dir, `sentinel-${i}`, await freePort(), sentinelLines, true))
  await Promise.all(sentinels.map(async (s) => await s.start()))
  const nodes = [a, b]

  const masterPort = async (sentinel) => Number((await withClient(sentinel.port, async (c) => await c.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', NAME)))[1])
  const everySentinelNames = async (port) => {
    for (const s of sentinels) if (await masterPort(s) !== port) return false
    return true
  }
  /** Every sentinel sees the master, its two peers and an in-sync replica. */
  const ready = async (master, replica) => await waitFor('the sentinels to see master and replica', async () => {
    for (const s of sentinels) {
      const ok = await withClient(s.port, async (c) => {
        const m = fields(await c.call('SENTINEL', 'MASTER', NAME))
        const replicas = (await c.call('SENTINEL', 'REPLICAS', NAME)).map(fields)
        return m.port === String(master.port) && m['num-other-sentinels'] === '2' && !m.flags.includes('down') &&
          replicas.some((r) => r.port === String(replica.port) && r['master-link-status'] === 'ok' && !r.flags.includes('down'))
      })
      if (!ok) return false
    }
    return true
  }, 60_000)
  await ready(a, b)

  const group = {
    name: NAME,
    sentinels: sentinels.map((s) => ({ host: '127.0.0.1', port: s.port })),
    get master () { return nodes[0] },
    get replica () { return nodes[1] },

    /** Stops the replica cleanly, keeps it down `downMs`, starts it again and waits until it is in sync. */
    async restartReplica (downMs) {
      const replica = nodes[1]
      await replica.stop('SIGTERM')
      await sleep(downMs)
      await replica.start()
      await waitFor('the restarted replica in sync', async () => await replica.inSync())
    },

    /** SENTINEL FAILOVER; resolves once every sentinel names the former replica and it is master. */
    async failover () {
      const [from, to] = nodes
      await waitFor('SENTINEL FAILOVER to be accepted', async () => await withClient(sentinels[0].port, async (c) => {
        try {
          return await c.call('SENTINEL', 'FAILOVER', NAME) === 'OK'
        } catch (err) {
          if (/NOGOODSLAVE|INPROG/.test(err.message)) return false
          throw err
        }
      }))
      await waitFor('the sentinels to name the new master', async () => await everySentinelNames(to.port))
      await waitFor('the new master', async () => await to.role() === 'master')
      nodes.reverse()
      return { from, to }
    },

    /** SIGKILL of the master; once the sentinels have promoted the replica, the old master starts again (empty). */
    async crashMaster () {
      const [from, to] = nodes
      await from.stop('SIGKILL')
      await waitFor('the sentinels to fail over', async () => await everySentinelNames(to.port))
      await waitFor('the new master', async () => await to.role() === 'master')
      nodes.reverse()
      await from.start()
      return { from, to }
    },

    /** Resolves once the group is whole again: the sentinels see the master and an in-sync replica. */
    async settled () {
      await waitFor('the demoted node in sync', async () => await nodes[1].role() === 'slave' && await nodes[1].inSync(), 60_000)
      await ready(nodes[0], nodes[1])
    },

    async stop () {
      await Promise.all(sentinels.map(async (s) => await s.stop('SIGKILL')))
      await Promise.all(nodes.map(async (n) => await n.stop('SIGKILL')))
      rmSync(dir, { recursive: true, force: true })
    }
  }
  return group
}

/**
 * A Redis Cluster of three masters, each with a replica (cluster-node-timeout 2 s), ready when
 * returned: every replica in sync and acknowledging writes. Joined by hand, as the test helper does.
 */
export async function startCluster () {
  const dir = mkdtempSync(join(tmpdir(), 'frs-faults-'))
  const nodes = []
  for (let i = 0; i < 6; i++) {
    const name = `node-${i}`
    nodes.push(new Node(dir, name, await freePort(), [
      'shutdown-timeout 0', 'repl-diskless-sync yes', 'repl-diskless-sync-delay 0',
      'cluster-enabled yes', `cluster-config-file ${name}-nodes.conf`, 'cluster-node-timeout 2000', `cluster-port ${await freePort()}`
    ], false))
  }
  await Promise.all(nodes.map(async (n) => await n.start()))
  const masters = nodes.slice(0, 3)
  const ids = await Promise.all(nodes.map(async (n) => await withClient(n.port, async (c) => String(await c.cluster('MYID')))))
  await Promise.all(masters.map(async (n, i) => await withClient(n.port, async (c) => {
    await c.cluster('SET-CONFIG-EPOCH', i + 1)
    await c.cluster('ADDSLOTSRANGE', Math.floor(i * 16384 / 3), Math.floor((i + 1) * 16384 / 3) - 1)
  })))
  const busPort = async (n) => (await withClient(n.port, async (c) => await c.config('GET', 'cluster-port')))[1]
  for (const n of nodes.slice(1)) await withClient(nodes[0].port, async (c) => await c.cluster('MEET', '127.0.0.1', n.port, await busPort(n)))
  const clusterOk = async (n) => await withClient(n.port, async (c) => {
    const info = String(await c.cluster('INFO'))
    return info.includes('cluster_state:ok') && info.includes(`cluster_known_nodes:${nodes.length}\r\n`)
  })
  await waitFor('every node to know the others', async () => (await Promise.all(nodes.map(clusterOk))).every(Boolean))
  // replica i + 3 of master i
  await Promise.all(nodes.slice(3).map(async (n, i) => await waitFor(`node ${i + 3} to replicate node ${i}`,
    async () => await withClient(n.port, async (c) => await c.cluster('REPLICATE', ids[i]) === 'OK'))))

  /** Resolves once `replica` is in sync with `master` and acknowledges a write to one of its slots (WAIT). */
  const acknowledging = async (master, replica) => await waitFor(`node ${nodes.indexOf(replica)} to acknowledge writes`, async () => {
    if (await replica.role() !== 'slave' || !await replica.inSync()) return false
    return await withClient(master.port, async (c) => {
      let probe = 0
      // a key of another master's slot is answered with MOVED
      while (await c.exists(`probe${probe}`).then(() => false, () => true)) probe++
      await c.set(`probe${probe}`, '1')
      return await c.wait(1, 100) === 1
    })
  }, 60_000)
  await Promise.all(masters.map(async (master, i) => await acknowledging(master, nodes[i + 3])))
  await waitFor('cluster_state:ok everywhere', async () => (await Promise.all(nodes.map(clusterOk))).every(Boolean))
  /** master 0 and its replica, whichever is master now first */
  const shard = [nodes[0], nodes[3]]

  return {
    nodes: masters.map((n) => ({ host: '127.0.0.1', port: n.port })),

    /** SIGKILL of the master of the first shard; resolves once its replica is master and every live node says cluster_state:ok. */
    async crashMaster () {
      const [from, to] = shard
      await from.stop('SIGKILL')
      await waitFor('the replica to be promoted', async () => await to.role() === 'master')
      await waitFor('cluster_state:ok on the live nodes', async () => (await Promise.all(nodes.filter((n) => n !== from).map(clusterOk))).every(Boolean))
      shard.reverse()
      return { from, to }
    },

    /** Starts the crashed master again (empty): it rejoins as the new master's replica; resolves once that acknowledges writes. */
    async rejoin () {
      const [master, crashed] = shard
      await crashed.start()
      await acknowledging(master, crashed)
    },

    async stop () {
      await Promise.all(nodes.map(async (n) => await n.stop('SIGKILL')))
      rmSync(dir, { recursive: true, force: true })
    }
  }
}
