import type { Cluster, Redis } from 'ioredis'
import type { SessionRecordData } from '../codec.js'
import { FST_RS_DECODE_FAILED } from '../errors.js'
import { unavailableOnError } from './redis-calls.js'
import type { LoadedSession, SaveRequest, SaveResult, SessionBackend, Store } from './store.js'

/**
 * A layout's store plus a set of session ids per owner (Spring Session's principal index), so all
 * of a user's sessions can be listed and ended. Index updates travel with the save or destroy
 * they belong to and cost no round trip of their own. Ids of sessions that expired are pruned
 * whenever the owner's sessions are listed, and after each login in the background. The index
 * has no TTL: reads slide a session's expiry without writing, so no TTL could follow them.
 */
export class OwnerIndexedStore implements SessionBackend {
  readonly client: Redis | Cluster
  readonly #store: Store
  readonly #prefix: string
  /** background prunes under way, awaited before the client closes */
  readonly #pruning = new Set<Promise<void>>()

  constructor (store: Store, prefix: string) {
    this.client = store.client
    this.#store = store
    this.#prefix = prefix + 'owner:'
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

  async destroy (id: string, owner?: string): Promise<void> {
    if (owner === undefined) return await this.#store.destroy(id)
    await Promise.all([this.#store.destroy(id), unavailableOnError(this.client.srem(this.#key(owner), id))])
  }

  /** Ids of the owner's live sessions; ids whose session is gone leave the index. */
  async listByOwner (owner: string): Promise<string[]> {
    const key = this.#key(owner)
    const ids = await unavailableOnError(this.client.smembers(key))
    const alive = await Promise.all(ids.map(async (id) => await this.#exists(id)))
    const dead = ids.filter((_, i) => !alive[i])
    if (dead.length > 0) await unavailableOnError(this.client.srem(key, ...dead))
    return ids.filter((_, i) => alive[i])
  }

  /** Ends every session of the owner ("log out everywhere"); resolves to how many. */
  async destroyByOwner (owner: string): Promise<number> {
    const ids = await this.listByOwner(owner)
    await Promise.all(ids.map(async (id) => await this.destroy(id, owner)))
    return ids.length
  }

  async #exists (id: string): Promise<boolean> {
    try {
      return await this.#store.get(id) !== null
    } catch (err) {
      // a record that no longer decodes is still a session to end
      if (err instanceof FST_RS_DECODE_FAILED) return true
      throw err
    }
  }

  #key (owner: string): string {
    return this.#prefix + Buffer.from(owner).toString('base64url')
  }
}
