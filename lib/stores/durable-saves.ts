import type { Cluster, Redis } from 'ioredis'
import { ConnectionPool } from './connection-pool.js'
import { OwnerIndexedStore } from './owner-index.js'
import type { SaveRequest, SaveResult, LayoutStore } from './store.js'
import type { Visibility } from '../visibility.js'

/** How many saves may wait for their replicas at once, each on its own connection. */
export const MAX_WAITING_SAVES = 16

/**
 * The store for `replicas`: a save's `WAIT` blocks the connection it is sent on until the
 * replicas answer, so saves go over connections of their own (the `WAIT` right after the writes,
 * on the same one), one save per connection at a time. Reads, destroys and the saves of other
 * sessions never queue behind a lagging replica.
 */
export class DurableSaves extends OwnerIndexedStore {
  readonly #saves: ConnectionPool<OwnerIndexedStore>

  /** `build` makes the store of the configured layout, with its owner index, on a connection. */
  constructor (client: Redis | Cluster, build: (client: Redis | Cluster) => LayoutStore, prefix: string, timeout: number, visibility: Visibility) {
    super(build(client), prefix, visibility)
    this.#saves = new ConnectionPool(client, (connection) => new OwnerIndexedStore(build(connection), prefix, visibility), { size: MAX_WAITING_SAVES, timeout })
  }

  override async save (request: SaveRequest): Promise<SaveResult> {
    return await this.#saves.use(async (store) => await store.save(request))
  }

  override async settle (): Promise<void> {
    await Promise.all([super.settle(), ...this.#saves.values.map(async (store) => await store.settle())])
  }

  override close (): void {
    this.#saves.close()
  }
}
