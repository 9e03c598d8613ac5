import type { Cluster, Redis } from 'ioredis'
import { unavailableOnError } from './redis-calls.js'
import type { StoreOptions } from './store.js'

/** What the layouts with one key per session share: a destroy is a DEL, and Redis expires the keys itself. */
export abstract class KeyPerSessionStore {
  readonly client: Redis | Cluster
  readonly #prefix: string

  constructor (options: StoreOptions) {
    this.client = options.client
    this.#prefix = options.prefix
  }

  async destroy (id: string): Promise<void> {
    await unavailableOnError(this.client.del(this.#prefix + id))
  }

  /** Redis expires these keys itself: nothing to sweep. */
  async sweep (): Promise<number> {
    return 0
  }

  async ping (): Promise<void> {
    await unavailableOnError(this.client.ping())
  }
}
