import type { FastifyInstance } from 'fastify'
import type { SessionTakeover } from '../migrate.js'
import type { ResolvedOptions } from '../options.js'
import type { OutageWatch } from '../outage.js'
import type { CachedStore } from '../stores/cached-store.js'
import type { SessionBackend } from '../stores/store.js'
import type { SessionTraceContext, Visibility } from '../visibility.js'
import { openMemcached } from './memcached.js'
import { openRedis } from './redis.js'

/** Whether a store call may be sent: the 503 to answer with at once while the connection is known to be down. */
export type Watch = Pick<OutageWatch, 'outage' | 'guard'>

/** A store the sessions live in, connected, with what the plugin asks of its engine. */
export interface Engine {
  store: SessionBackend<unknown>
  watch: Watch
  /** `migrateFrom`: the take-over of another library's sessions (Redis only) */
  takeover: SessionTakeover | undefined
  /** the local cache (`cache`, Redis only), whose hits are served without a promise */
  cache: Pick<CachedStore, 'cached'> | undefined
}

/** What the tracing channels call the store: the Redis layout, or Memcached. */
export function storeName (opts: ResolvedOptions): SessionTraceContext['layout'] {
  return opts.connection.memcached === undefined ? opts.layout : 'memcached'
}

/**
 * Connects to the configured engine (Redis, or Memcached with `memcached`) and builds its store;
 * closing what it opened is hooked to the app's close. Rejects when the server refuses the
 * credentials, never because it is unreachable.
 */
export async function openEngine (fastify: FastifyInstance, opts: ResolvedOptions, visibility: Visibility): Promise<Engine> {
  return opts.connection.memcached === undefined ? await openRedis(fastify, opts, visibility) : await openMemcached(fastify, opts)
}
