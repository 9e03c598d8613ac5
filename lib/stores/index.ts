import type { Cluster, Redis } from 'ioredis'
import { Codec, type SessionRecordData } from '../codec.js'
import { FST_RS_DECODE_FAILED } from '../errors.js'
import { isValidId } from '../id.js'
import type { ResolvedOptions } from '../options.js'
import { BucketedStore } from './bucketed-store.js'
import { CachedStore } from './cached-store.js'
import { DurableSaves } from './durable-saves.js'
import { HashStore } from './hash-store.js'
import { OwnerIndexedStore } from './owner-index.js'
import type { SessionBackend, SessionDetails, LayoutStore, Store, StoreOptions } from './store.js'
import { StringStore } from './string-store.js'
import type { SessionStoreEvents, Visibility } from '../visibility.js'

export type { Store, SessionDetails } from './store.js'

export interface Stores {
  store: OwnerIndexedStore
  /** the local cache inside `store`, when `cache` is on, for the tracking connection to keep true */
  cache: CachedStore | undefined
}

/**
 * The store of the configured layout, with the local cache (`cache`) and the owner index; with
 * `replicas`, saving on connections of its own. `onSlideError` hears of failed expiry slides of cached sessions;
 * `visibility` of every destroy.
 */
export function createStores (options: ResolvedOptions, client: Redis | Cluster, onSlideError: (err: Error) => void, visibility: Visibility): Stores {
  const build = (connection: Redis | Cluster): LayoutStore => layoutStore(options, layoutOptions(options, connection))
  // with replicas, saves go over connections of their own (options.ts refuses the cache beside them)
  if (options.replicas !== undefined) return { store: new DurableSaves(client, build, options.prefix, options.connection.commandTimeout, visibility), cache: undefined }
  const storeOptions = layoutOptions(options, client)
  const layout = layoutStore(options, storeOptions)
  // options.ts allows the cache with the string layout only
  const cache = options.cache === undefined ? undefined : new CachedStore(layout as StringStore, storeOptions, options.cache, onSlideError)
  return { store: new OwnerIndexedStore(cache ?? layout, options.prefix, visibility), cache }
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

function layoutStore (options: ResolvedOptions, storeOptions: StoreOptions): LayoutStore {
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

/** A listener of the `SessionStoreEvents` event `E`; one that throws or rejects is logged and breaks no request. */
export type SessionStoreListener<E extends keyof SessionStoreEvents> = (...args: SessionStoreEvents[E]) => void | Promise<void>

/**
 * `fastify.sessionStore`: sessions by id, outside any request, and an EventEmitter of their
 * lifecycle. `Client` is the client the sessions live in: ioredis's, or with `memcached` a memjs one.
 * @example
 * const { client } = app.sessionStore as unknown as SessionStore<MemcachedClient>
 */
export interface SessionStore<Client = Redis | Cluster> {
  /** The client the sessions live in: ioredis's, or memjs's with `memcached`. */
  readonly client: Client
  /** Resolves to the session's data, or null when there is no such session. */
  get (id: string): Promise<SessionRecordData | null>
  /**
   * Deletes the session, e.g. to end another user's session. When a `destroyed` listener is
   * registered, the session's owner is read first (one more round trip), for its event.
   */
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
   * The live sessions filed under `owner` with `session.setOwner(owner, info?)`, most recently
   * used first (by `lastSeenAt`, else `createdAt`): id, createdAt, lastSeenAt, expiresAt and info
   * each. Two round trips, however many sessions. A session whose record does not decode is left
   * out (`destroyByOwner` still ends it).
   * Redis only: with `memcached` it rejects with FST_RS_UNSUPPORTED, as `destroyByOwner` does.
   * @example
   * for (const { id, lastSeenAt, info } of await fastify.sessionStore.listByOwner(user.id)) {
   *   console.log(id === request.session.id ? 'this device' : info?.userAgent, new Date(lastSeenAt ?? 0))
   * }
   */
  listByOwner (owner: string): Promise<SessionDetails[]>
  /**
   * Ends every session of `owner` ("log out everywhere") and resolves to how many there were.
   * @example
   * await fastify.sessionStore.destroyByOwner(user.id)
   */
  destroyByOwner (owner: string): Promise<number>
  /**
   * Calls `listener` on each `created`, `regenerated`, `destroyed` or `expired` session, with
   * `{ id, owner }`. `expired` is best effort: noticed when a browser comes back with the cookie
   * of a session that no longer exists, not by a timer.
   * @example
   * fastify.sessionStore.on('destroyed', ({ id, owner }) => { sockets.closeSession(id) })
   */
  on<E extends keyof SessionStoreEvents>(event: E, listener: SessionStoreListener<E>): this
  /**
   * As `on`, for the next such event only.
   * @example
   * fastify.sessionStore.once('created', () => { console.log('first visitor') })
   */
  once<E extends keyof SessionStoreEvents>(event: E, listener: SessionStoreListener<E>): this
  /**
   * Removes a listener added with `on` or `once`.
   * @example
   * fastify.sessionStore.off('expired', onExpired)
   */
  off<E extends keyof SessionStoreEvents>(event: E, listener: SessionStoreListener<E>): this
}

/** Runs a store call, or rejects at once while the connection is known to be down. */
export type Guard = <T>(call: () => Promise<T>) => Promise<T>

/** `fastify.sessionStore`: the store's calls on the EventEmitter of `visibility`'s events. */
export function sessionStoreApi<Client> (store: SessionBackend<Client>, guard: Guard, visibility: Visibility): SessionStore<Client> {
  const guardDestroy = visibility.guardingDestroys(guard)
  const calls: Omit<SessionStore<Client>, 'on' | 'once' | 'off'> = {
    client: store.client,
    get: async (id) => isValidId(id) ? await guard(async () => await store.get(id)) : null,
    destroy: async (id) => {
      if (!isValidId(id)) return
      await guardDestroy(async () => await store.destroy(id, visibility.heard('destroyed') ? await ownerOf(store, id) : undefined))
    },
    sweep: async () => await guard(async () => await store.sweep()),
    ping: async () => await guard(async () => await store.ping()),
    listByOwner: async (owner) => await guard(async () => await store.listByOwner(owner)),
    destroyByOwner: async (owner) => await guardDestroy(async () => await store.destroyByOwner(owner))
  }
  return Object.assign(visibility.events, calls) as unknown as SessionStore<Client>
}

/** The owner a session is filed under, for the `destroyed` event; none for a record that does not decode. */
async function ownerOf (store: Store<unknown>, id: string): Promise<string | undefined> {
  try {
    return (await store.load(id))?.owner
  } catch (err) {
    if (err instanceof FST_RS_DECODE_FAILED) return undefined
    throw err
  }
}
