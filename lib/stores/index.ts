import type { Cluster, Redis } from 'ioredis'
import { Codec, type SessionRecordData } from '../codec.js'
import { isValidId } from '../id.js'
import type { ResolvedOptions } from '../options.js'
import type { Store } from './store.js'
import { StringStore } from './string-store.js'

export type { Store } from './store.js'

/** The store of the configured layout. */
export function createStore (options: ResolvedOptions, client: Redis | Cluster): Store {
  const codec = new Codec({ encode: options.encode, decode: options.decode, maxSize: options.maxSize })
  return new StringStore({
    client,
    codec,
    prefix: options.prefix,
    timeout: options.timeout,
    redisTtl: options.redisTtl,
    replicas: options.replicas
  })
}

/** `fastify.sessionStore`: sessions by id, outside any request. */
export interface SessionStore {
  /** The ioredis client the sessions live in. */
  readonly client: Redis | Cluster
  /** Resolves to the session's data, or null when there is no such session. */
  get (id: string): Promise<SessionRecordData | null>
  /** Deletes the session, e.g. to end another user's session. */
  destroy (id: string): Promise<void>
  /** Rejects with FST_RS_STORE_UNAVAILABLE when Redis does not answer within `commandTimeout`. */
  ping (): Promise<void>
}

export function sessionStoreApi (store: Store): SessionStore {
  return {
    client: store.client,
    get: async (id) => isValidId(id) ? await store.get(id) : null,
    destroy: async (id) => { if (isValidId(id)) await store.destroy(id) },
    ping: async () => await store.ping()
  }
}
