import type { Cluster, Redis } from 'ioredis'
import { Codec, type SessionRecordData } from '../codec.js'
import { isValidId } from '../id.js'
import type { ResolvedOptions } from '../options.js'
import { BucketedStore } from './bucketed-store.js'
import { CachedStore } from './cached-store.js'
import { DurableSaves } from './durable-saves.js'
import { HashStore } from './hash-store.js'
import { OwnerIndexedStore } from './owner-index.js'
import type { SessionBackend, Store, StoreOptions } from './store.js'
import { StringStore } from './string-store.js'

export type { Store } from './store.js'

export interface Stores {
  store: OwnerIndexedStore
  /** the local cache inside `store`, when `cache` is on, for the tracking connection to keep true */
  cache: CachedStore | undefined
}

/**
 * The store of the configured layout, with the local cache (`cache`) and the owner index; with
 * `replicas`, saving on connections of its own. `onSlideError` hears of failed expiry slides of cached sessions.
 */
export function createStores (options: ResolvedOptions, client: Redis | Cluster, onSlideError: (err: Error) => void): Stores {
  const build = (connection: Redis | Cluster): Store => layoutStore(options, layoutOptions(options, connection))
  // with replicas, saves go over connections of their own (options.ts refuses the cache beside them)
  if (options.replicas !== undefined) return { store: new DurableSaves(client, build, options.prefix, options.connection.commandTimeout), cache: undefined }
  const storeOptions = layoutOptions(options, client)
  const layout = layoutStore(options, storeOptions)
  // options.ts allows the cache with the string layout only
  const cache = options.cache === undefined ? undefined : new CachedStore(layout as StringStore, storeOptions, options.cache, onSlideError)
  return { store: new OwnerIndexedStore(cache ?? layout, options.prefix), cache }
}

function layoutOptions (options: ResolvedOptions, client: Redis | Cluster): StoreOptions {
  const { encode, decode, maxSize, compress } = options
  return {
    client,
    codec: new Codec({ encode, decode, maxSize, compress }),
    prefix: options.prefix,
    timeout: options.timeout,
    absoluteTimeout: options.absoluteTimeout,
    redisTtl: options.redisTtl,
    replicas: options.replicas
  }
}

function layoutStore (options: ResolvedOptions, storeOptions: StoreOptions): Store {
  switch (options.layout) {
    case 'hash': return new HashStore(storeOptions)
    case 'bucketed': return new BucketedStore({ ...storeOptions, buckets: options.buckets })
    case 'string': return new StringStore(storeOptions)
  }
}

/**
 * Sweeps every `seconds`, never two sweeps at once, on a timer that does not keep the process
 * alive; failures go to `onError`. Resolves, once the sweep under way is done, to stop.
 */
export function scheduleSweeps (store: Store, seconds: number, onError: (err: Error) => void): () => Promise<void> {
  let running: Promise<void> | undefined
  const timer = setInterval(() => {
    running ??= store.sweep().then(() => {}, onError).finally(() => { running = undefined })
  }, seconds * 1000).unref()
  return async () => {
    clearInterval(timer)
    await running
  }
}

/**
 * `fastify.sessionStore`: sessions by id, outside any request. `Client` is the client the sessions
 * live in: ioredis's, or with `memcached` a memjs one.
 * @example
 * const { client } = app.sessionStore as unknown as SessionStore<MemcachedClient>
 */
export interface SessionStore<Client = Redis | Cluster> {
  /** The client the sessions live in: ioredis's, or memjs's with `memcached`. */
  readonly client: Client
  /** Resolves to the session's data, or null when there is no such session. */
  get (id: string): Promise<SessionRecordData | null>
  /** Deletes the session, e.g. to end another user's session. */
  destroy (id: string): Promise<void>
  /**
   * Removes expired sessions in bounded batches and resolves to how many. Only the bucketed
   * layout has any: Redis expires the string and hash layouts' keys itself, so there it resolves 0.
   * @example
   * const removed = await fastify.sessionStore.sweep()
   */
  sweep (): Promise<number>
  /** Rejects with FST_RS_STORE_UNAVAILABLE when Redis does not answer within `commandTimeout`. */
  ping (): Promise<void>
  /**
   * Ids of the live sessions filed under `owner` with `session.setOwner(owner)`; Redis only
   * (with `memcached` it rejects with FST_RS_UNSUPPORTED, as `destroyByOwner` does).
   * @example
   * const devices = (await fastify.sessionStore.listByOwner(user.id)).length
   */
  listByOwner (owner: string): Promise<string[]>
  /**
   * Ends every session of `owner` ("log out everywhere") and resolves to how many there were.
   * @example
   * await fastify.sessionStore.destroyByOwner(user.id)
   */
  destroyByOwner (owner: string): Promise<number>
}

/** Runs a store call, or rejects at once while the connection is known to be down. */
export type Guard = <T>(call: () => Promise<T>) => Promise<T>

export function sessionStoreApi<Client> (store: SessionBackend<Client>, guard: Guard): SessionStore<Client> {
  return {
    client: store.client,
    get: async (id) => isValidId(id) ? await guard(async () => await store.get(id)) : null,
    destroy: async (id) => { if (isValidId(id)) await guard(async () => await store.destroy(id)) },
    sweep: async () => await guard(async () => await store.sweep()),
    ping: async () => await guard(async () => await store.ping()),
    listByOwner: async (owner) => await guard(async () => await store.listByOwner(owner)),
    destroyByOwner: async (owner) => await guard(async () => await store.destroyByOwner(owner))
  }
}
