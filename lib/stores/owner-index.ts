import type { Cluster, Redis } from 'ioredis'
import type { SessionRecordData } from '../codec.js'
import { FST_RS_DECODE_FAILED } from '../errors.js'
import { unavailableOnError } from './redis-calls.js'
import type { LoadedSession, SaveRequest, SaveResult, SessionBackend, SessionDetails, LayoutStore } from './store.js'
import type { Visibility } from '../visibility.js'

/**
 * A layout's store plus a set of session ids per owner (Spring Session's principal index), so all
 * of a user's sessions can be listed and ended. Index updates travel with the save or destroy
 * they belong to and cost no round trip of their own. Ids of sessions that expired are pruned
 * whenever the owner's sessions are listed, and after each login in the background. The index
 * has no TTL: reads slide a session's expiry without writing, so no TTL could follow them.
 */
export class OwnerIndexedStore implements SessionBackend {
  readonly client: Redis | Cluster
  readonly #store: LayoutStore
  readonly #prefix: string
  readonly #visibility: Visibility
  /** background prunes under way, awaited before the client closes */
  readonly #pruning = new Set<Promise<void>>()

  constructor (store: LayoutStore, prefix: string, visibility: Visibility) {
    this.client = store.client
    this.#store = store
    this.#prefix = prefix + 'owner:'
    this.#visibility = visibility
  }

  load (id: string): Promise<LoadedSession | null> {
    return this.#store.load(id)
  }

  async get (id: string): Promise<SessionRecordData | null> {
    return await this.#store.get(id)
  }

  async sweep (): Promise<number> {
    return await this.#store.sweep()
  }

  async ping (): Promise<void> {
    await this.#store.ping()
  }

  save (request: SaveRequest): Promise<SaveResult> {
    // most saves leave the index alone: no async frame of our own for them
    if (request.index === undefined && request.unindex === undefined) return this.#store.save(request)
    return this.#saveIndexed(request)
  }

  async #saveIndexed (request: SaveRequest): Promise<SaveResult> {
    const updates: Array<Promise<number>> = []
    if (request.index !== undefined) updates.push(this.client.sadd(this.#key(request.index), request.id))
    if (request.unindex !== undefined) updates.push(this.client.srem(this.#key(request.unindex.owner), request.unindex.id))
    const [result] = await Promise.all([this.#store.save(request), unavailableOnError(Promise.all(updates))])
    // best effort, once the response has left: the next listing prunes whatever this one could not
    const owner = request.index
    if (owner !== undefined) {
      const pruning = new Promise((resolve) => setImmediate(resolve))
        .then(async () => { await this.listByOwner(owner) })
        .catch(() => {})
        .finally(() => this.#pruning.delete(pruning))
      this.#pruning.add(pruning)
    }
    return result
  }

  holds (snapshot: unknown, data: SessionRecordData): boolean {
    return this.#store.holds(snapshot, data)
  }

  /** Closes the connections the store opened itself, once `settle()` resolved: none here. */
  close (): void {}

  /** Resolves once the background work under way is done, so the client can close cleanly. */
  async settle (): Promise<void> {
    await Promise.all(this.#pruning)
  }

  /** Every destroy passes here, so the `destroyed` event and the destroy channel hear of each. */
  async destroy (id: string, owner?: string): Promise<boolean> {
    const destroyed = this.#visibility.destroy(this.#store, id, owner)
    if (owner === undefined) return await destroyed
    const [found] = await Promise.all([destroyed, unavailableOnError(this.client.srem(this.#key(owner), id))])
    return found
  }

  /**
   * The owner's live sessions, most recently used first (by `lastSeenAt`, else `createdAt`); one
   * whose record does not decode is left out. Costs two round trips: the index, then every session.
   */
  async listByOwner (owner: string): Promise<SessionDetails[]> {
    const sessions = await this.#live(owner)
    return sessions.flatMap(({ details }) => details ?? []).sort(newestFirst)
  }

  /** Ends every session of the owner ("log out everywhere"); resolves to how many. */
  async destroyByOwner (owner: string): Promise<number> {
    const ids = (await this.#live(owner)).map(({ id }) => id)
    await Promise.all(ids.map(async (id) => await this.destroy(id, owner)))
    return ids.length
  }

  /** The owner's sessions, with their details unless their record does not decode; ids whose session is gone leave the index. */
  async #live (owner: string): Promise<Array<{ id: string, details: SessionDetails | undefined }>> {
    const key = this.#key(owner)
    const ids = await unavailableOnError(this.client.smembers(key))
    const found = await Promise.all(ids.map(async (id) => await this.#describe(id)))
    const dead = ids.filter((_, i) => found[i] === null)
    if (dead.length > 0) await unavailableOnError(this.client.srem(key, ...dead))
    return ids.flatMap((id, i) => {
      const details = found[i]
      return details === null ? [] : [{ id, details }]
    })
  }

  /** A session's details; null when it is gone, undefined when its record does not decode (still a session to end). */
  async #describe (id: string): Promise<SessionDetails | null | undefined> {
    try {
      return await this.#store.describe(id)
    } catch (err) {
      if (err instanceof FST_RS_DECODE_FAILED) return undefined
      throw err
    }
  }

  #key (owner: string): string {
    return this.#prefix + Buffer.from(owner).toString('base64url')
  }
}

/** Most recently used first: by when last seen, or created where that is unknown; the newer creation breaks ties. */
function newestFirst (a: SessionDetails, b: SessionDetails): number {
  return (b.lastSeenAt ?? b.createdAt) - (a.lastSeenAt ?? a.createdAt) || b.createdAt - a.createdAt
}
