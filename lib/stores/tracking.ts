import type { FastifyBaseLogger } from 'fastify'
import type { Redis } from 'ioredis'
import { firstConnection } from '../connection.js'
import { FST_RS_CONNECTION_REJECTED } from '../errors.js'

/** What the tracking connection tells the cache. */
export interface Invalidated {
  enable: () => void
  disable: () => void
  invalidate: (keys: Buffer[] | null) => void
}

const CHANNEL = '__redis__:invalidate'

/**
 * Keeps Redis telling the cache what changed: `CLIENT TRACKING` on the connection that reads
 * sessions (BCAST for the key prefix, NOLOOP so this process's own writes stay cached), redirected
 * to a connection of our own subscribed to `__redis__:invalidate`. That one speaks RESP2, where a
 * redirected invalidation arrives as a pub/sub message whose payload is the array of keys (null on
 * a flush).
 *
 * Tracking belongs to a connection: whenever either connection closes, invalidations may be
 * missed, so the cache is emptied and bypassed; once both are up again, tracking is turned on anew
 * (with the invalidation connection's new client id) and the cache with it. A connection that
 * dies silently (no FIN, no RST: a NAT or firewall dropped it) closes no socket, so the
 * invalidation connection is asked to answer every `heartbeat` ms, and dropped when it has not.
 */
export class Tracking {
  readonly #reader: Redis
  readonly #channel: Redis
  readonly #cache: Invalidated
  readonly #prefix: string
  readonly #log: FastifyBaseLogger
  /** the invalidation connection's client id, while it is subscribed */
  #channelId: number | undefined
  /** bumped whenever a connection closes: a reply to what was sent before says nothing of now */
  #generation = 0
  /** the first subscription's outcome, for `start` */
  #subscribing: Promise<Error | undefined | void> | undefined
  #started = false
  /** ms between the PINGs that tell a live invalidation connection from a silently dead one */
  readonly #heartbeat: number
  #beating: NodeJS.Timeout | undefined

  /** `heartbeat`: ms between PINGs on the invalidation connection (the plugin gives `commandTimeout`) */
  constructor (reader: Redis, cache: Invalidated, prefix: string, log: FastifyBaseLogger, heartbeat: number) {
    this.#reader = reader
    this.#heartbeat = heartbeat
    this.#cache = cache
    this.#prefix = prefix
    this.#log = log
    // ioredis would resubscribe before 'ready', where CLIENT ID can no longer be asked; and
    // neither queues nor resends a command: CLIENT ID and SUBSCRIBE answer for one connection
    this.#channel = reader.duplicate({ protocol: 2, autoResubscribe: false, lazyConnect: true, enableOfflineQueue: false, autoResendUnfulfilledCommands: false })
    this.#channel.on('messageBuffer', (_channel: Buffer, keys: Buffer[] | null) => { cache.invalidate(keys) })
    this.#channel.on('error', (err: Error) => log.debug({ err }, 'session cache invalidation connection failed'))
    this.#channel.on('ready', this.#channelReady)
    this.#channel.on('close', this.#channelClosed)
    reader.on('ready', this.#readerReady)
    reader.on('close', this.#lost)
  }

  /**
   * Connects and turns tracking on. Rejects with FST_RS_CONNECTION_REJECTED when Redis refuses
   * a command it takes (Redis before 6, an ACL without them); while Redis is unreachable it
   * resolves at once, and tracking starts when Redis answers.
   */
  async start (): Promise<void> {
    // an unreachable Redis: ioredis keeps trying, and 'ready' does the rest
    this.#channel.connect().catch(() => {})
    if (this.#reader.status === 'ready') {
      await firstConnection(this.#channel)
      const refused = await this.#subscribing
      if (refused instanceof Error) {
        await this.close()
        throw refused
      }
    }
    this.#started = true
  }

  /** Turns tracking off on a client we were given and closes our own connection. */
  async close (): Promise<void> {
    this.#reader.off('ready', this.#readerReady)
    this.#reader.off('close', this.#lost)
    this.#lost()
    this.#channel.disconnect()
    if (this.#reader.status === 'ready') await this.#reader.call('CLIENT', 'TRACKING', 'OFF').catch(() => {})
  }

  readonly #channelReady = (): void => {
    this.#subscribing = this.#subscribe().catch(this.#failed)
  }

  readonly #channelClosed = (): void => {
    clearInterval(this.#beating)
    this.#channelId = undefined
    this.#lost()
  }

  readonly #readerReady = (): void => {
    this.#track().catch(this.#failed)
  }

  /**
   * A refusal (an ACL changed) keeps the cache off until a connection comes back; anything else
   * (a timeout) is tried again on a new invalidation connection. Resolves to the refusal.
   */
  readonly #failed = (err: Error): Error | undefined => {
    if (err instanceof FST_RS_CONNECTION_REJECTED) {
      if (this.#started) this.#log.warn({ err }, 'the session cache stays off')
      return err
    }
    this.#log.debug({ err }, 'turning the session cache on failed; trying again')
    this.#channel.disconnect(true)
  }

  readonly #lost = (): void => {
    this.#generation++
    this.#cache.disable()
  }

  async #subscribe (): Promise<void> {
    const id = await refusedAs('CLIENT ID', this.#channel.client('ID'))
    await refusedAs(`SUBSCRIBE ${CHANNEL}`, this.#channel.subscribe(CHANNEL))
    this.#channelId = id
    this.#beat()
    await this.#track()
  }

  /**
   * PINGs the subscribed invalidation connection; one that has not answered by the next PING
   * may be missing invalidations: it is dropped (which empties the cache) and made anew.
   */
  #beat (): void {
    let unanswered = false
    const answered = (): void => { unanswered = false }
    this.#beating = setInterval(() => {
      if (unanswered) {
        this.#log.warn('the session cache\'s invalidation connection stopped answering: the cache is off until it is back')
        this.#channel.disconnect(true)
        return
      }
      unanswered = true
      this.#channel.ping().then(answered, answered)
    }, this.#heartbeat).unref()
  }

  async #track (): Promise<void> {
    const id = this.#channelId
    // both on the same server, or the id names a client of another (a Sentinel failover under way)
    if (id === undefined || this.#reader.status !== 'ready' || endpoint(this.#reader) !== endpoint(this.#channel)) return
    const generation = this.#generation
    // ON again with the same prefix is refused: OFF first, in the same round trip
    await refusedAs('CLIENT TRACKING', Promise.all([
      this.#reader.call('CLIENT', 'TRACKING', 'OFF'),
      this.#reader.call('CLIENT', 'TRACKING', 'ON', 'REDIRECT', String(id), 'BCAST', 'PREFIX', this.#prefix, 'NOLOOP')
    ]))
    if (generation === this.#generation) this.#cache.enable()
  }
}

/** Where a connection's socket goes; two connections to one server agree. */
function endpoint (client: Redis): string {
  const socket = client.stream
  return `${socket.remoteAddress}:${socket.remotePort}`
}

/** Redis's refusal of `command` (an old Redis, an ACL) as FST_RS_CONNECTION_REJECTED; other failures as they are. */
async function refusedAs<T> (command: string, reply: Promise<T>): Promise<T> {
  return await reply.catch((err: Error) => {
    if (err.name !== 'ReplyError') throw err
    throw new FST_RS_CONNECTION_REJECTED(`${command} failed (${err.message}): the session cache needs Redis 6 or later, and an ACL user needs +client|id +client|tracking +subscribe and the channel ${CHANNEL}`, { cause: err })
  })
}
