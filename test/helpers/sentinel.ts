import { requireRedisServer } from './redis-process.js'
import { launchRedis, withAdmin, type RedisServer } from './redis-server.js'
import type { TlsFiles } from './tls.js'
import { waitFor } from './wait.js'

export interface SentinelGroupOptions {
  /** Password of master and replica (`requirepass`, `masterauth`, `sentinel auth-pass`). */
  password?: string
  /** `requirepass` of the sentinels themselves. */
  sentinelPassword?: string
  /** Every node and sentinel listens on TLS only. */
  tls?: TlsFiles
}

export interface SentinelGroup {
  readonly name: 'mymaster'
  /** The current master: `failover()` swaps `master` and `replica`. */
  readonly master: RedisServer
  readonly replica: RedisServer
  readonly sentinels: Array<{ host: string, port: number }>
  /** The sentinel processes, to pause or restart one. `admin()` talks to a sentinel. */
  readonly sentinelServers: RedisServer[]
  /** Forces a failover and waits until every sentinel names the former replica as master. */
  failover(): Promise<void>
  stop(): Promise<void>
}

const NAME = 'mymaster'

/** Flat `[k1, v1, k2, v2…]` replies of SENTINEL commands as an object. */
function fields (flat: unknown): Record<string, string> {
  const list = Array.isArray(flat) ? flat.map(String) : []
  const out: Record<string, string> = {}
  for (let i = 0; i + 1 < list.length; i += 2) out[list[i]] = list[i + 1]
  return out
}

async function role (server: RedisServer): Promise<string> {
  return await withAdmin(server, async c => String((await c.call('ROLE') as unknown[])[0]))
}

async function waitInSync (replica: RedisServer): Promise<void> {
  await waitFor(async () => withAdmin(replica, async c => (await c.info('replication')).includes('master_link_status:up')),
    { what: `replica ${replica.port} in sync` })
}

/** Every sentinel sees the master at `masterPort`, both other sentinels and a healthy replica. */
async function waitSentinelsReady (sentinels: RedisServer[], masterPort: number, replicaPort: number): Promise<void> {
  await Promise.all(sentinels.map(async s => await waitFor(async () => withAdmin(s, async c => {
    const master = fields(await c.call('SENTINEL', 'MASTER', NAME))
    const replicas = (await c.call('SENTINEL', 'REPLICAS', NAME) as unknown[]).map(fields)
    if (master.port === String(masterPort) && master['num-other-sentinels'] === String(sentinels.length - 1) &&
      replicas.some(r => r.port === String(replicaPort) && r['master-link-status'] === 'ok')) return true
    // Thrown, so a timeout says what was still missing.
    const seen = replicas.map(r => `${r.port} ${r.flags} link ${r['master-link-status']}`).join('; ')
    throw new Error(`sees master ${master.port} (${master.flags}), ${master['num-other-sentinels']} other sentinels, replicas [${seen}]`)
  }), { what: `sentinel ${s.port} to know master ${masterPort} and replica ${replicaPort}`, timeout: 20_000 })))
}

/**
 * A master, one replica and three sentinels watching them as `mymaster` (quorum 2), ready when
 * returned: every sentinel knows the master, its peers and the in-sync replica.
 * @example
 * const group = await startSentinelGroup()
 * const client = new Redis({ sentinels: group.sentinels, name: group.name })
 */
export async function startSentinelGroup (opts: SentinelGroupOptions = {}): Promise<SentinelGroup> {
  requireRedisServer('startSentinelGroup()')
  const { password, sentinelPassword, tls } = opts
  const nodeOpts = { password, tls, tlsOnly: tls !== undefined }
  const started: RedisServer[] = []
  const track = (s: RedisServer): RedisServer => { started.push(s); return s }
  try {
    let master = track(await launchRedis(nodeOpts))
    let replica = track(await launchRedis({ ...nodeOpts, config: [`replicaof 127.0.0.1 ${master.port}`] }))
    // Sentinels learn replicas from the master's INFO, polled every 10 s: start them only once
    // the replica is attached, so the first poll already lists it.
    await waitInSync(replica)
    const sentinelLines = [
      'sentinel resolve-hostnames no',
      `sentinel monitor ${NAME} 127.0.0.1 ${master.port} 2`,
      `sentinel down-after-milliseconds ${NAME} 1000`,
      `sentinel failover-timeout ${NAME} 5000`,
      ...(password === undefined ? [] : [`sentinel auth-pass ${NAME} ${password}`])
    ]
    const sentinelServers = await Promise.all([0, 1, 2].map(async () =>
      track(await launchRedis({ sentinel: sentinelLines, tls, tlsOnly: tls !== undefined, password: sentinelPassword }))))
    await waitSentinelsReady(sentinelServers, master.port, replica.port)

    let stopping: Promise<void> | undefined
    return {
      name: NAME,
      get master () { return master },
      get replica () { return replica },
      sentinels: sentinelServers.map(s => ({ host: s.host, port: s.port })),
      sentinelServers,
      async failover () {
        const [from, to] = [master, replica]
        // NOGOODSLAVE until the sentinel has fresh INFO from the replica; retry briefly.
        await waitFor(async () => withAdmin(sentinelServers[0], async c => {
          try {
            return await c.call('SENTINEL', 'FAILOVER', NAME) === 'OK'
          } catch (err) {
            if (err instanceof Error && /NOGOODSLAVE|INPROG/.test(err.message)) return false
            throw err
          }
        }), { what: 'SENTINEL FAILOVER to be accepted', timeout: 20_000, interval: 250 })
        await Promise.all(sentinelServers.map(async s => await waitFor(async () => withAdmin(s, async c => {
          const addr = await c.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', NAME) as string[]
          return addr[1] === String(to.port)
        }), { what: `sentinel ${s.port} to name ${to.port} as master`, timeout: 20_000 })))
        await waitFor(async () => await role(to) === 'master', { what: `${to.port} to become master` })
        // Sentinels reconfigure the old master only ~8 s after it was demoted in their view.
        // Do now what they would do then, client kills included: that is what sends clients
        // still talking to the old master off to find the new one.
        await withAdmin(from, async c => {
          const replies = await c.multi()
            .call('REPLICAOF', '127.0.0.1', String(to.port))
            .call('CONFIG', 'REWRITE')
            .call('CLIENT', 'KILL', 'TYPE', 'normal')
            .call('CLIENT', 'KILL', 'TYPE', 'pubsub')
            .exec()
          const failed = replies?.find(([err]) => err)
          if (failed) throw failed[0]
        })
        await waitInSync(from)
        master = to
        replica = from
      },
      async stop () {
        // Sentinels first, so no failover starts while the nodes go down.
        stopping ??= (async () => {
          await Promise.all(sentinelServers.map(async s => await s.stop()))
          await Promise.all([master.stop(), replica.stop()])
        })()
        await stopping
      }
    }
  } catch (err) {
    await Promise.all(started.map(async s => await s.stop()))
    throw err
  }
}
