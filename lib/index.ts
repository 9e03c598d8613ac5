import type { Session, SessionData } from './session.js'
import type { SessionStore } from './stores/index.js'
import { plugin } from './plugin.js'

export { errorCodes } from './errors.js'
export type { RedisSessionOptions, TlsSettings, RedisNode, CacheOptions } from './options.js'
export type { Session, SessionData } from './session.js'
export type { SessionStore, SessionStoreListener, SessionDetails } from './stores/index.js'
export type { SessionInfo } from './session-info.js'
export type { SessionEvent, SessionStoreEvents, SessionTraceContext } from './visibility.js'
export type { CookieAttributes } from './cookie.js'
export type { MigrateFromOptions } from './migrate.js'
export type { MemcachedClient, MemcachedOptions } from './memcached-connection.js'

/**
 * Server-side sessions for Fastify, kept in Redis.
 * @example
 * import Fastify from 'fastify'
 * import redisSession from 'fastify-redis-sessions'
 *
 * const app = Fastify()
 * await app.register(redisSession, { secret: process.env.SESSION_SECRET, url: 'redis://localhost:6379/0' })
 * app.get('/', async (request) => {
 *   const views = request.session.get('views', 0) + 1
 *   request.session.set('views', views)
 *   return { views }
 * })
 */
export const redisSession = plugin
export default plugin

declare module 'fastify' {
  interface FastifyRequest {
    /** The session, loaded before your handler when the request carries a valid cookie. */
    session: Session & SessionData
    /**
     * Adds flash messages of `type` (an array adds each; several arguments are joined with
     * `util.format`) and returns how many of that type are waiting. A property, not a method,
     * so the declarations of @fastify/flash (which @fastify/passport loads) merge with it.
     */
    flash: (type: string, ...message: unknown[]) => number
  }
  interface FastifyReply {
    /** Takes the flash messages of `type`, or all of them by type, so each is shown once. */
    flash: {
      (type: string): string[]
      (): Record<string, string[]>
    }
  }
  interface FastifyInstance {
    /** Sessions by id, outside any request. */
    sessionStore: SessionStore
  }
  interface FastifyContextConfig {
    /** `false`: this route has no session: no load, no save, no cookie. */
    session?: boolean
  }
}
