import type { FastifyBaseLogger } from 'fastify'
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis'
import type { ConnectionOptions as TlsConnectionOptions } from 'node:tls'
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
  const common: RedisOptions = {
    connectTimeout: options.connectTimeout,
    commandTimeout: options.commandTimeout,
    username: options.username,
    password: options.password,
    db: options.db,
    tls: tlsOptions(options.tls, options.tlsSkipVerify),
    retryStrategy: retryForever
  }
  if (options.cluster !== undefined) {
    const clusterOptions: ClusterOptions = { redisOptions: common, clusterRetryStrategy: retryForever }
    return { client: new Cluster(options.cluster.nodes, clusterOptions), owned: true }
  }
  if (options.sentinel !== undefined) {
    const { sentinels, name, password, username, tls } = options.sentinel
    const sentinelTls = tlsOptions(tls ?? options.tls, options.tlsSkipVerify)
    return {
      client: new Redis({
        ...common,
        sentinels,
        name,
        sentinelPassword: password,
        sentinelUsername: username,
        enableTLSForSentinelMode: sentinelTls !== undefined,
        sentinelTLS: sentinelTls,
        sentinelRetryStrategy: retryForever
      }),
      owned: true
    }
  }
  if (options.url !== undefined) {
    // ioredis turns rediss:// into TLS itself; explicit settings refine it
    return { client: new Redis(options.url, stripUndefined(common)), owned: true }
  }
  if (options.socketPath !== undefined) {
    return { client: new Redis({ ...common, path: options.socketPath }), owned: true }
  }
  return { client: new Redis({ ...common, host: options.host ?? '127.0.0.1', port: options.port ?? 6379 }), owned: true }
}

/** Keeps reconnecting, a little slower each time, so the app heals by itself when Redis is back. */
function retryForever (attempt: number): number {
  return Math.min(attempt * 100, 2000)
}

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
  if (client.status === 'ready') return
  await new Promise<void>((resolve, reject) => {
    const settle = (error?: Error): void => {
      client.off('ready', onReady)
      client.off('error', onError)
      if (error === undefined) resolve()
      else reject(new FST_RS_CONNECTION_REJECTED(error.message, { cause: error }))
    }
    const onReady = (): void => settle()
    const onError = (error: Error): void => settle(isRejection(error) ? error : undefined)
    client.on('ready', onReady)
    client.on('error', onError)
  })
}

const NETWORK_ERRORS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ENOENT', 'EPIPE'])

function isRejection (error: Error & { code?: string, lastNodeError?: Error }): boolean {
  // a cluster reports why its last node failed
  if (error.lastNodeError !== undefined) return isRejection(error.lastNodeError)
  if (error.name === 'ReplyError') return true
  return error.code !== undefined && !NETWORK_ERRORS.has(error.code)
}

/** Logs the first error of each outage as a warning and the retries that follow at debug level. */
export function reportConnectionErrors (client: Redis | Cluster, log: FastifyBaseLogger): void {
  let down = false
  client.on('ready', () => { down = false })
  client.on('error', (error: Error) => {
    if (down) {
      log.debug({ err: error }, 'Redis connection still failing')
    } else {
      down = true
      log.warn({ err: error }, 'Redis connection failed; session requests get 503 until it is back')
    }
  })
}
