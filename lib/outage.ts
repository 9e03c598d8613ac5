import type { FastifyBaseLogger } from 'fastify'
import type { Cluster, Redis, SentinelAddress } from 'ioredis'
import { FST_RS_STORE_UNAVAILABLE } from './errors.js'

/**
 * Follows a client's connection. While it is known to be down (an attempt to connect failed and
 * none has succeeded since) requests get their 503 at once, saying why, instead of each waiting
 * `commandTimeout` for "Command timed out"; the log says so once per outage, and again when it ends.
 */
export class OutageWatch {
  /** why requests fail while the connection is down; undefined while it is up or merely connecting */
  #reason: string | undefined

  constructor (client: Redis | Cluster, log: FastifyBaseLogger) {
    const target = describeTarget(client)
    let reported = false
    client.on('error', (error: Error) => {
      // an error while ready (a reset, a reply) may heal with the next attempt: not down yet
      if (client.status !== 'ready') this.#reason ??= `the connection to ${target} is down (${error.message}); requests that need a session get 503 until Redis answers again`
      if (reported) return log.debug({ err: error }, 'Redis connection still failing')
      reported = true
      log.warn({ err: error }, `Redis connection to ${target} failed; requests that need a session get 503 until it is back`)
    })
    client.on('ready', () => {
      if (reported) log.info(`Redis connection to ${target} is back`)
      reported = false
      this.#reason = undefined
    })
  }

  /** The 503 to answer with at once, or undefined while commands may still get through. */
  outage (): InstanceType<typeof FST_RS_STORE_UNAVAILABLE> | undefined {
    return this.#reason === undefined ? undefined : new FST_RS_STORE_UNAVAILABLE(this.#reason)
  }

  /** Runs `command` unless the connection is known to be down, in which case it rejects at once. */
  async guard<T> (command: () => Promise<T>): Promise<T> {
    const outage = this.outage()
    if (outage !== undefined) throw outage
    return await command()
  }
}

/** Where the client connects, as an operator would name it: `host:port`, a socket, a master, a cluster. */
export function describeTarget (client: Redis | Cluster): string {
  // a cluster's errors name the node that failed
  if (client.isCluster) return 'the Redis Cluster'
  const { host, port, path, sentinels, name } = (client as Redis).options as { host: string, port: number, path?: string | null, sentinels?: SentinelAddress[] | null, name?: string }
  if (sentinels != null && sentinels.length > 0) {
    return `master "${name}" via sentinels ${sentinels.map((sentinel) => `${sentinel.host}:${sentinel.port}`).join(', ')}`
  }
  return path ?? `${host}:${port}`
}
