import type { Cluster, Redis } from 'ioredis'
import { FST_RS_DECODE_FAILED } from '../errors.js'
import { isValidId } from '../id.js'
import { sessionDetails } from './record.js'
import { readRecord, unavailableOnError } from './redis-calls.js'
import type { SessionDetails, SessionStats, StoreOptions } from './store.js'

/** What the layouts with one key per session share: a destroy is a DEL, and Redis expires the keys itself. */
export abstract class KeyPerSessionStore {
  readonly client: Redis | Cluster
  readonly #prefix: string
  readonly #options: StoreOptions

  constructor (options: StoreOptions) {
    this.client = options.client
    this.#prefix = options.prefix
    this.#options = options
  }

  /**
   * A session's details from its header, which `read` fetches and `header` finds in the reply,
   * with the key's TTL in the same round trip (in LRU mode the header tells the expiry instead).
   */
  protected async detailsOf<T> (id: string, read: Promise<T | null>, header: (found: T) => string): Promise<SessionDetails | null> {
    const [found, ttl] = await readRecord(Promise.all([read, this.client.pttl(this.#prefix + id)]))
    if (ttl === -2) return null
    // the key is there without its header (a hash without the header field): a record that does not decode
    if (found === null) throw new FST_RS_DECODE_FAILED('the session has no header')
    return sessionDetails(id, header(found), ttl === -1 ? undefined : Date.now() + ttl, this.#options)
  }

  async destroy (id: string): Promise<boolean> {
    return await unavailableOnError(this.client.del(this.#prefix + id)) === 1
  }

  /** Redis expires these keys itself: nothing to sweep. */
  async sweep (): Promise<number> {
    return 0
  }

  async ping (): Promise<void> {
    await unavailableOnError(this.client.ping())
  }
}

/**
 * Counts the sessions of the `'string'` or `'hash'` layout (each stored as a Redis value of that
 * type) and the bytes Redis reports for them. SCAN walks every key of every master: this serves the
 * command line, an operator's tool, and never a request. Other keys under the prefix (owner indexes,
 * a bucketed layout's buckets, the app's own) are not sessions: their names are no session id.
 */
export async function keyPerSessionStats (client: Redis | Cluster, prefix: string, layout: 'string' | 'hash'): Promise<SessionStats> {
  const stats: SessionStats = { sessions: 0, bytes: 0 }
  const masters = client.isCluster ? (client as Cluster).nodes('master') : [client as Redis]
  await Promise.all(masters.map(async (node) => {
    const scan = node.scanStream({ match: escapeGlob(prefix) + '*', type: layout, count: 1000 })
    for await (const keys of scan as AsyncIterable<string[]>) {
      const sessions = keys.filter((key) => isValidId(key.slice(prefix.length)))
      const sizes = await Promise.all(sessions.map(async (key) => await client.memory('USAGE', key)))
      // null: the session expired since the SCAN saw it
      const found = sizes.filter((size) => size !== null)
      stats.sessions += found.length
      stats.bytes += found.reduce((sum, size) => sum + size, 0)
    }
  }))
  return stats
}

/** The prefix as a SCAN MATCH pattern that matches it literally. */
function escapeGlob (text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&')
}
