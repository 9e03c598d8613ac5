import type { Redis } from 'ioredis'
import { requireRedisServer } from './redis-process.js'
import { launchRedis, withAdmin, type RedisServer } from './redis-server.js'
import type { TlsFiles } from './tls.js'
import { waitFor } from './wait.js'

export interface ClusterOptions {
  /** Number of masters sharing the 16384 slots; default 3, no replicas. */
  masters?: number
  /** `requirepass` and `masterauth` of every node. */
  password?: string
  /** TLS only on every node: clients, the cluster bus and replication (`tls-cluster`, `tls-replication`). */
  tls?: TlsFiles
  /** With `tls`: clients must present a certificate from its CA (`tls-auth-clients yes`). */
  requireClientCert?: boolean
  /** Extra redis.conf lines of every node, replicas included. */
  config?: string[]
}

export interface RedisCluster {
  /** Seed nodes for an ioredis `Cluster`. */
  readonly nodes: Array<{ host: string, port: number }>
  readonly servers: RedisServer[]
  stop(): Promise<void>
  /** Restarts node `i` (its data is lost, its slots and identity are kept) and waits for `cluster_state:ok`. */
  restartNode(i: number): Promise<void>
  /** Adds a replica of master `i`, in sync when returned; `stop()` stops it too. */
  addReplica(i: number): Promise<RedisServer>
}

const SLOTS = 16384

async function waitClusterOk (servers: RedisServer[]): Promise<void> {
  await Promise.all(servers.map(async s => await waitFor(async () => withAdmin(s, async c => {
    const info = String(await c.call('CLUSTER', 'INFO'))
    return info.includes('cluster_state:ok') && info.includes(`cluster_known_nodes:${servers.length}\r\n`)
  }), { what: `cluster_state:ok on ${s.port}`, timeout: 20_000 })))
}

/**
 * A Redis Cluster of `masters` nodes on loopback, joined by hand (epochs, slot ranges, MEET),
 * which is what `redis-cli --cluster create` does, without depending on redis-cli.
 * @example
 * const cluster = await startCluster()
 * const client = new Cluster(cluster.nodes)
 * // TLS only, on every link
 * const secure = await startCluster({ tls: await makeTlsFiles() })
 */
export async function startCluster (opts: ClusterOptions = {}): Promise<RedisCluster> {
  requireRedisServer('startCluster()')
  const masters = opts.masters ?? 3
  if (masters < 1) throw new Error('startCluster() needs at least one master')
  const launch = async (): Promise<RedisServer> => await launchRedis({ cluster: true, password: opts.password, tls: opts.tls, tlsOnly: opts.tls !== undefined, requireClientCert: opts.requireClientCert, config: opts.config })
  const started = await Promise.allSettled(Array.from({ length: masters }, launch))
  const servers = started.flatMap(r => r.status === 'fulfilled' ? [r.value] : [])
  const replicas: RedisServer[] = []
  const stop = async (): Promise<void> => { await Promise.all([...servers, ...replicas].map(async s => await s.stop())) }
  try {
    const failed = started.find(r => r.status === 'rejected')
    if (failed) throw failed.reason
    await Promise.all(servers.map(async (s, i) => await withAdmin(s, async c => {
      // Distinct epochs up front spare the cluster its epoch-collision dance.
      await c.call('CLUSTER', 'SET-CONFIG-EPOCH', String(i + 1))
      const first = Math.floor(i * SLOTS / masters)
      const last = Math.floor((i + 1) * SLOTS / masters) - 1
      await c.call('CLUSTER', 'ADDSLOTSRANGE', String(first), String(last))
    })))
    const busPorts = await Promise.all(servers.map(async s => await withAdmin(s, async c =>
      (await c.call('CONFIG', 'GET', 'cluster-port') as string[])[1])))
    await withAdmin(servers[0], async c => {
      for (let i = 1; i < servers.length; i++) {
        await c.call('CLUSTER', 'MEET', '127.0.0.1', String(servers[i].port), busPorts[i])
      }
    })
    await waitClusterOk(servers)
  } catch (err) {
    await stop()
    throw err
  }
  return {
    nodes: servers.map(s => ({ host: s.host, port: s.port })),
    servers,
    stop,
    async restartNode (i) {
      await servers[i].restart()
      await waitClusterOk([...servers, ...replicas])
    },
    async addReplica (i) {
      const replica = await launch()
      replicas.push(replica)
      const [masterId, busPort] = await Promise.all([
        withAdmin(servers[i], async c => String(await c.call('CLUSTER', 'MYID'))),
        withAdmin(servers[i], async c => (await c.call('CONFIG', 'GET', 'cluster-port') as string[])[1])
      ])
      await withAdmin(replica, async c => await c.call('CLUSTER', 'MEET', '127.0.0.1', String(servers[i].port), busPort))
      // REPLICATE needs the master known to the new node first
      await waitFor(async () => withAdmin(replica, async c => {
        await c.call('CLUSTER', 'REPLICATE', masterId)
        return true
      }), { what: `replica ${replica.port} to accept CLUSTER REPLICATE` })
      await waitClusterOk([...servers, ...replicas])
      await waitFor(async () => withAdmin(replica, async c => (await c.info('replication')).includes('master_link_status:up')),
        { what: `replica ${replica.port} in sync` })
      // and acknowledging: a replica just synced answers WAIT only from its next report on, up
      // to a second later. The probe is a key of a slot the master serves.
      await withAdmin(servers[i], async c => {
        let probe = 0
        // a key of another master's slot is answered with MOVED
        while (await c.exists(`probe${probe}`).then(() => false, () => true)) probe++
        await waitFor(async () => {
          await c.set(`probe${probe}`, '1')
          return await c.wait(1, 100) === 1
        }, { what: `replica ${replica.port} to acknowledge writes` })
      })
      return replica
    }
  }
}

/**
 * Which master holds `key`: its index in `admins`, clients of the masters in order (the others
 * answer MOVED); -1 when none does.
 * @example
 * const admins = cluster.servers.map((server) => server.admin())
 * const holder = await holderOf(admins, 'sess:' + id)
 */
export async function holderOf (admins: Redis[], key: string): Promise<number> {
  const found = await Promise.all(admins.map(async (admin) => await admin.exists(key).catch(() => 0)))
  return found.indexOf(1)
}
