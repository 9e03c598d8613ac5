import { Cluster, Redis, type ClusterOptions, type RedisOptions, type SentinelAddress, type SentinelConnectionOptions } from 'ioredis'
import { connect as tlsConnect, type ConnectionOptions as TlsConnectionOptions } from 'node:tls'
import { FST_RS_CONNECTION_REJECTED } from './errors.js'
import type { ConnectionOptions, TlsSettings } from './options.js'

export interface Connection {
  client: Redis | Cluster
  /** true when the plugin created the client and so must close it */
  owned: boolean
}

/** Builds the ioredis client the options describe, or wraps the one the user gave. */
export function connect (options: ConnectionOptions): Connection {
  if (options.client !== undefined) return { client: options.client, owned: false }
  const tls = tlsOptions(options.tls, options.tlsSkipVerify)
  const common: RedisOptions = {
    connectTimeout: options.connectTimeout,
    commandTimeout: options.commandTimeout,
    username: options.username,
    password: options.password,
    db: options.db,
    tls,
    // disconnect() keeps a timer this long even for a socket that is long closed (Redis down):
    // the process would outlive app.close() by 2 s, ioredis' default
    disconnectTimeout: 500
  }
  if (options.cluster !== undefined) {
    const clusterOptions: ClusterOptions = {
      // node connections keep ioredis' default (no retry): a node that goes away is dropped and
      // the slot map refreshed, so its slots follow a failover; the cluster itself retries forever
      redisOptions: common,
      // ioredis turns the seed nodes' hostnames into IPs, so TLS would check the certificate
      // against an IP it seldom names: keep the names
      ...(tls === undefined ? {} : { dnsLookup: keepHostname }),
      clusterRetryStrategy: retryForever,
      // commandTimeout only starts once a node has the command: while the whole cluster is
      // unreachable a queued command would wait forever instead of failing (503) at once
      enableOfflineQueue: false
    }
    const client = new Cluster(options.cluster.nodes, clusterOptions)
    // a refused handshake reaches a Cluster as "Connection is closed.": ask the first seed node why
    if (tls !== undefined) PROBES.set(client, { tls: { ...options.cluster.nodes[0], ...tls }, timeout: options.connectTimeout })
    return { client, owned: true }
  }
  if (options.sentinel !== undefined) {
    const { sentinels, name, password, username, tls: ownTls } = options.sentinel
    const sentinelTls = tlsOptions(ownTls ?? options.tls, options.tlsSkipVerify)
    const client = new Redis({
      ...common,
      retryStrategy: retryForever,
      sentinels,
      name,
      sentinelPassword: password,
      sentinelUsername: username,
      sentinelTLS: sentinelTls,
      // without it ioredis reaches the master in plain TCP whatever `tls` says
      enableTLSForSentinelMode: tls !== undefined,
      sentinelRetryStrategy: retryForever,
      sentinelCommandTimeout: options.connectTimeout,
      // reconnect on the sentinels' +switch-master, not only once the old master drops us
      failoverDetector: true
    })
    // quit() leaves the failover detector's sentinel connections open: disconnect() closes them
    client.once('end', () => client.disconnect())
    return { client, owned: true }
  }
  const client = options.url !== undefined
    // ioredis turns rediss:// into TLS itself; explicit settings refine it
    ? new Redis(options.url, { ...stripUndefined(common), retryStrategy: retryForever })
    : options.socketPath !== undefined
      ? new Redis({ ...common, retryStrategy: retryForever, path: options.socketPath })
      : new Redis({ ...common, retryStrategy: retryForever, host: options.host ?? '127.0.0.1', port: options.port ?? 6379 })
  const { host, port, path, tls: withTls } = client.options
  if (withTls !== undefined) PROBES.set(client, { tls: { host, port, path, ...withTls }, timeout: options.connectTimeout })
  return { client, owned: true }
}

/**
 * Where to ask again why a TLS connection failed: a server that demands a client certificate may
 * drop us before its alert is read, so ioredis sees ECONNRESET, which looks like an outage.
 */
const PROBES = new WeakMap<Redis | Cluster, { tls: TlsConnectionOptions, timeout: number }>()

/** Keeps reconnecting, a little slower each time, so the app heals by itself when Redis is back. */
function retryForever (attempt: number): number {
  return Math.min(attempt * 100, 2000)
}

function keepHostname (hostname: string, callback: (error: null, address: string) => void): void {
  callback(null, hostname)
}

/** `tlsSkipVerify` alone means TLS without checking the server's certificate. */
function tlsOptions (tls: boolean | TlsSettings | undefined, skipVerify: boolean | undefined): TlsConnectionOptions | undefined {
  if (tls === undefined || tls === false) return skipVerify === true ? { rejectUnauthorized: false } : undefined
  return { ...(tls === true ? {} : tls), rejectUnauthorized: skipVerify !== true }
}

/** Options given as undefined must not override what the URL says. */
function stripUndefined (options: RedisOptions): RedisOptions {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined))
}

/**
 * Resolves once the client is ready or Redis is merely unreachable (the app starts and serves 503s
 * until it is back); rejects with FST_RS_CONNECTION_REJECTED when Redis refuses the credentials,
 * the ACL or the TLS handshake, which no retry will fix.
 */
export async function firstConnection (client: Redis | Cluster): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const settle = (error?: Error): void => {
      client.off('ready', onReady)
      client.off('error', onError)
      client.off('refresh', onRefresh)
      if (error === undefined) resolve()
      else reject(new FST_RS_CONNECTION_REJECTED(error.message + clusterHint(client, error), { cause: error }))
    }
    const onReady = (): void => settle()
    const onError = (error: Error): void => {
      whyRefused(client, error).then(settle, settle)
    }
    // a Cluster whose ready check is refused retries forever without an error: ask why each time,
    // once ioredis has sent its own check (its listener comes after ours). Asked first, a node
    // would be connecting when the check picks it, which fails it ("Connection is closed."): with
    // one master, every time
    const onRefresh = (): void => {
      process.nextTick(() => {
        readyCheckRefusal(client as Cluster).then((error) => { if (error !== undefined) settle(error) }, settle)
      })
    }
    client.on('ready', onReady)
    client.on('error', onError)
    client.on('refresh', onRefresh)
  })
}

/** What ioredis' Cluster client sends besides the plugin's commands: the slot map, its ready check, the slot-map connection's name. */
export const CLUSTER_COMMANDS = '+cluster|slots +cluster|info +client|setname'

/**
 * Why a master refuses the Cluster's ready check (`CLUSTER INFO`), or undefined when it does not
 * (the cluster may just not be ready yet).
 */
async function readyCheckRefusal (cluster: Cluster): Promise<Error | undefined> {
  const [node] = cluster.nodes('master')
  return await node?.cluster('INFO').then(() => undefined, rejection)
}

/** A Cluster user refused a command: say what a Cluster needs besides the README's line. */
function clusterHint (client: Redis | Cluster, error: Error): string {
  return client.isCluster && /^NOPERM .*'cluster\|/.test(error.message) ? ` (a Cluster's ACL user also needs ${CLUSTER_COMMANDS})` : ''
}

const NETWORK_ERRORS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ENOENT', 'EPIPE'])

// ioredis reports why the sentinels failed in words only, and loses a TLS error on the way
// ("Connection is closed."): `All sentinels are unreachable. Retrying … Last error: <message>`
const SENTINELS_FAILED = /^All sentinels are unreachable\..*? Last error: (.*)$/s
const REFUSAL = /\b(?:WRONGPASS|NOAUTH|NOPERM)\b|certificate|No such master/

/** The error that tells why Redis refused us, or undefined when it may just be unreachable. */
function rejection (error: Error & { code?: string, lastNodeError?: Error }): Error | undefined {
  // a cluster reports why its last node failed
  if (error.lastNodeError !== undefined) return rejection(error.lastNodeError)
  if (error.name === 'ReplyError') return error
  return error.code !== undefined && !NETWORK_ERRORS.has(error.code) ? error : undefined
}

async function whyRefused (client: Redis | Cluster, error: Error): Promise<Error | undefined> {
  const { sentinelTLS, sentinels, connectTimeout } = (client as Redis).options as SentinelConnectionOptions & { sentinels: SentinelAddress[], connectTimeout: number }
  const failed = SENTINELS_FAILED.exec(error.message)
  if (failed !== null) {
    if (REFUSAL.test(failed[1])) return error
    return sentinelTLS === undefined ? undefined : await handshakeRefusal({ ...sentinels[0], ...sentinelTLS }, connectTimeout)
  }
  const refused = rejection(error)
  const probe = PROBES.get(client)
  return refused !== undefined || probe === undefined ? refused : await handshakeRefusal(probe.tls, probe.timeout)
}

/**
 * Completes a TLS handshake and listens, without a word, for the server's verdict: an error is
 * the refusal; a close, or silence for `timeout` ms, is none.
 */
async function handshakeRefusal (options: TlsConnectionOptions, timeout: number): Promise<Error | undefined> {
  return await new Promise((resolve) => {
    const socket = tlsConnect(options)
    const settle = (error?: Error): void => {
      socket.destroy()
      resolve(error === undefined ? undefined : rejection(error))
    }
    const pass = (): void => settle()
    socket.once('error', settle)
    socket.once('close', pass)
    socket.setTimeout(timeout, pass)
  })
}

/** What the access check needs to know of the options. */
export interface AccessNeeds {
  prefix: string
  layout: 'string' | 'hash' | 'bucketed'
  redisTtl: boolean
  /** seconds; above 0 the string and hash layouts cut expiries to the ms (PEXPIRE) */
  absoluteTimeout?: number
  replicas: unknown
  /** `migrateFrom`: the old store's records are read and deleted too */
  migrateFrom?: { prefix: string }
  /** the local cache: undefined when off */
  cache?: unknown
}

// `K` stands for a session key; the arguments only need the right shape, nothing runs
const LAYOUT_COMMANDS = {
  string: ['get K', 'set K v', 'del K'],
  hash: ['hgetall K', 'exists K', 'hset K f v', 'hdel K f', 'del K'],
  bucketed: ['hget K f', 'hexists K f', 'hset K f v', 'hdel K f', 'zscore K m', 'zadd K 1 m', 'zrem K m', 'zrangebyscore K 0 1', 'time']
}
// what slides the expiry in Redis: the string layout's reads, the other layouts' scripts
const SLIDING = { string: ['getex K EX 1', 'expire K 1', 'persist K'], hash: ['hget K f', 'expire K 1', 'persist K'], bucketed: [] }
const SCRIPTS = ['eval s 1 K', 'evalsha 0000000000000000000000000000000000000000 1 K']
/** what a take-over (`migrateFrom`) sends on keys under the old prefix */
export const TAKEOVER_COMMANDS = ['get K', 'del K']
// the local cache: tracking on the reading connection, its own subscribed invalidation connection
const CACHE = ['client tracking on', 'client id', 'subscribe __redis__:invalidate']

/**
 * The commands a registration sends: the layout's own and what runs inside its Lua scripts.
 * The README's recommended ACL line is their union.
 */
export function neededCommands (needs: AccessNeeds): string[] {
  const scripted = needs.layout !== 'string'
  return [
    ...LAYOUT_COMMANDS[needs.layout],
    ...(scripted ? SCRIPTS : []),
    ...(needs.redisTtl ? SLIDING[needs.layout] : []),
    ...(needs.redisTtl && (needs.absoluteTimeout ?? 0) > 0 && needs.layout !== 'bucketed' ? ['pexpire K 1'] : []),
    ...(needs.replicas === undefined ? [] : ['wait 0 0']),
    ...(needs.cache === undefined ? [] : CACHE),
    // the owner index (`setOwner`, `listByOwner`)
    'sadd K m', 'srem K m', 'smembers K',
    'ping'
  ]
}

// redis.acl_check_cmd (Redis 7) asks the ACL without running anything; ARGV: the key, the commands.
// The key is no KEYS entry: EVAL itself would be refused a key outside the user's patterns.
const ACCESS_SCRIPT = `
local denied = {}
for i = 2, #ARGV do
  local command = {}
  for word in string.gmatch(ARGV[i], '%S+') do command[#command + 1] = word == 'K' and ARGV[1] or word end
  if not redis.acl_check_cmd(unpack(command)) then
    denied[#denied + 1] = command[1] == 'client' and 'client|' .. command[2] or command[1]
  end
end
return denied`

/**
 * Rejects with FST_RS_CONNECTION_REJECTED, naming the commands, when the ACL denies the user a
 * command the plugin needs on keys under `prefix` (and, with `migrateFrom`, under the old prefix),
 * so a restricted user fails at register rather than with 503s later. Costs one round trip;
 * skipped while Redis is unreachable, and on a Redis older than 7, which cannot tell.
 */
export async function checkAccess (client: Redis | Cluster, needs: AccessNeeds): Promise<void> {
  if (client.status !== 'ready') return
  const checks: Array<[string, string[]]> = [[needs.prefix + 'access-check', neededCommands(needs)]]
  if (needs.migrateFrom !== undefined) checks.push([needs.migrateFrom.prefix + 'access-check', TAKEOVER_COMMANDS])
  const problems = await Promise.all(checks.map(async ([key, commands]) => {
    const denied = await deniedOn(client, key, commands)
    return denied.length === 0 ? [] : [`${denied.join(', ')} on keys like ${key}`]
  }))
  if (problems.flat().length > 0) {
    throw new FST_RS_CONNECTION_REJECTED(`the ACL denies the user ${problems.flat().join('; ')}`)
  }
}

async function deniedOn (client: Redis | Cluster, key: string, commands: string[]): Promise<string[]> {
  try {
    return await client.eval(ACCESS_SCRIPT, 0, key, ...commands) as string[]
  } catch (err) {
    // a user without EVAL needs none when the layout runs no script; other errors say nothing of the ACL
    if (!(err as Error).message.startsWith('NOPERM') || !commands.includes(SCRIPTS[0])) return []
    return ['eval']
  }
}
