import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { CookieSigner, readCookie, serializeCookie, type VerifiedCookie } from './cookie.js'
import { cookieDelivery } from './cookie-delivery.js'
import { openEngine, storeName } from './engines/index.js'
import { FST_RS_DECODE_FAILED } from './errors.js'
import { addFlash, takeFlash } from './flash.js'
import { resolveOptions, type RedisSessionOptions } from './options.js'
import { RedisSession } from './session.js'
import { sessionStoreApi } from './stores/index.js'
import { secondsToLive } from './stores/record.js'
import type { LoadedSession } from './stores/store.js'
import { Visibility } from './visibility.js'

type Decorated = Record<string, RedisSession | null>

async function redisSessions (fastify: FastifyInstance, options: RedisSessionOptions): Promise<void> {
  const opts = resolveOptions(options)
  const visibility = new Visibility(storeName(opts), fastify.log, usable)
  const { store, watch, takeover, cache } = await openEngine(fastify, opts, visibility)
  fastify.addHook('preClose', async () => await store.settle())
  fastify.addHook('onClose', async () => store.close())
  const signer = new CookieSigner(opts.secrets)
  const keptByBrowser = cookieDelivery(opts.cookieName, opts.cookie)
  const { decorator, cookieName, cookie, detectChanges, redisTtl, cookieOnException, shouldSetCookie } = opts
  const guard = watch.guard.bind(watch)
  const guardDestroy = visibility.guardingDestroys(guard)
  const destroyRecord = async (id: string, owner: string | undefined): Promise<void> => { await guardDestroy(async () => await store.destroy(id, owner)) }

  fastify.decorate(decorator + 'Store', sessionStoreApi(store, guard, visibility))
  fastify.decorateRequest(decorator, null)

  function requestFlash (this: FastifyRequest, type: string, ...messages: unknown[]): number {
    return addFlash(sessionOf(this), type, messages)
  }
  const replyFlash = function (this: FastifyReply, type?: string) {
    return takeFlash(sessionOf(this.request), type)
  } as FastifyReply['flash']
  function sessionOf (request: FastifyRequest): RedisSession {
    const session = (request as unknown as Decorated)[decorator]
    if (session === null) throw new Error('This route has no session (config: { session: false })')
    return session
  }
  function attach (request: FastifyRequest, session: RedisSession | null): void {
    (request as unknown as Decorated)[decorator] = session
  }

  fastify.addHook('onRequest', function loadSession (request, reply, done) {
    // @fastify/flash, when registered, brings its own flash with the same storage
    if (request.flash === undefined) {
      request.flash = requestFlash
      reply.flash = replyFlash
    }
    // asked per request, not noted in onRoute: routes declared before this plugin loads (register
    // without await, the usual style) never reach its onRoute hook
    // (and set: the decorator's null misses requests of child plugins registered before this one)
    if (request.routeOptions.config.session === false) {
      attach(request, null)
      return done()
    }
    const header = request.headers.cookie
    const value = header === undefined ? undefined : readCookie(header, cookieName)
    const verified = value === undefined ? null : signer.verify(value)
    if (verified === null) {
      const taking = takeover?.begin(request, destroyRecord)
      if (taking !== undefined) return taking.then((session) => { attach(request, session); done() }, done)
      attach(request, new RedisSession(destroyRecord))
      return done()
    }
    takeover?.beside(request)
    const outage = watch.outage()
    if (outage !== undefined) return done(visibility.refused('load', outage))
    const cached = cache?.cached(verified.id)
    if (cached !== undefined) {
      attachLoaded(request, verified, visibility.fromCache(verified.id, cached))
      return done()
    }
    visibility.load(store, verified.id).then((record: LoadedSession | null) => {
      attachLoaded(request, verified, record)
      done()
    }, (err: Error) => {
      if (!(opts.deserializationFailsNew && err instanceof FST_RS_DECODE_FAILED)) return done(err)
      attach(request, RedisSession.replacing(destroyRecord, verified, false))
      done()
    })
  })

  /** The request's session: the stored one, or (null: it no longer exists, or expired) a new one replacing it. */
  function attachLoaded (request: FastifyRequest, verified: VerifiedCookie, record: LoadedSession | null): void {
    attach(request, record !== null ? new RedisSession(destroyRecord, verified, record) : RedisSession.replacing(destroyRecord, verified, true))
  }

  if (!cookieOnException) {
    fastify.addHook('onError', function noteFailure (request, reply, error, done) {
      const session = (request as unknown as Decorated)[decorator]
      if (session !== null) RedisSession.markFailed(session)
      done()
    })
  }

  fastify.addHook('onSend', function saveSession (request, reply, payload, done) {
    const session = (request as unknown as Decorated)[decorator]
    if (session === null) return done(null, payload)
    const state = RedisSession.internals(session)
    if (state.saving) {
      // an async hook replied without `return reply`, so the handler sent again while the first
      // response waits for its save: the first response wins, this one is dropped
      request.log.warn('reply sent twice while the session was being saved; the second send is dropped')
      return
    }
    if (!RedisSession.settle(session) || state.failed) return done(null, payload)
    const cookieAllowed = shouldSetCookie === undefined || shouldSetCookie(request, reply)

    const change = RedisSession.changeState(session, detectChanges)
    // values handed out may have been changed in place: the store tells, without a round trip
    const changed = change === 'changed' || (change === 'unknown' && !store.holds(state.snapshot, RedisSession.toStored(session).data))
    // a browser that sent no cookie of ours may be unable to keep one (a Secure cookie on http)
    const write = state.isNew
      ? cookieAllowed && changed && (state.cookie !== undefined || keptByBrowser(request))
      : changed || (!redisTtl && needsRefresh(state.touched, state.expiresAt, state.timeout, session.createdAt))
    if (!write) {
      takeover?.settle(request, reply, cookieAllowed)
      if (!cookieAllowed || state.cookie === undefined) return done(null, payload)
      if (state.destroyed) setCookie(reply, request, '', true)
      else if (!state.isNew && (cookie.maxAge !== undefined || state.cookie.stale)) setCookie(reply, request, signedValue(session, state.cookie), false)
      return done(null, payload)
    }

    const outage = watch.outage()
    if (outage !== undefined) return done(visibility.refused('save', outage))
    const wasNew = state.isNew
    state.saving = true
    visibility.save(store, {
      id: session.id,
      session: RedisSession.toStored(session),
      isNew: state.isNew,
      snapshot: state.snapshot,
      previousId: state.previousId,
      adoptedKey: state.adopted?.key,
      ...RedisSession.ownerChanges(session)
    }, RedisSession.regeneratedFrom(session)).then((result) => {
      state.saving = false
      if (result === 'lost') {
        request.log.debug('session save dropped: the session was destroyed or regenerated meanwhile')
      } else {
        if (result === 'saved') RedisSession.markSaved(session)
        if (cookieAllowed && (wasNew || cookie.maxAge !== undefined || state.cookie?.stale === true)) {
          setCookie(reply, request, signedValue(session, state.cookie), false)
        }
      }
      takeover?.settle(request, reply, cookieAllowed)
      done(null, payload)
    }, (err: Error) => {
      state.saving = false
      done(err)
    })
  })

  /** LRU mode: a read rewrites the record once less than 90% of what it may live is left. */
  function needsRefresh (touched: boolean, expiresAt: number | undefined, ownTimeout: number | undefined, createdAt: number): boolean {
    return touched || (expiresAt !== undefined && expiresAt - Date.now() < secondsToLive(ownTimeout ?? opts.timeout, createdAt, opts.absoluteTimeout) * 900)
  }

  /** A loaded record is a session still: not expired in LRU mode, its absolute lifetime not over. */
  function usable (record: LoadedSession): boolean {
    return (record.expiresAt === undefined || record.expiresAt > Date.now()) && !lifetimeOver(record.createdAt)
  }

  /** `absoluteTimeout`: the session has lived its whole lifetime, however active it was. */
  function lifetimeOver (createdAt: number): boolean {
    return opts.absoluteTimeout > 0 && createdAt + opts.absoluteTimeout * 1000 <= Date.now()
  }

  function setCookie (reply: FastifyReply, request: FastifyRequest, value: string, expire: boolean): void {
    const secure = cookie.secure === 'auto' ? request.protocol === 'https' : cookie.secure
    reply.header('set-cookie', serializeCookie(cookieName, value, cookie, secure, expire))
  }

  /** The session's cookie value: the one the request came with while it is current (no HMAC), else signed anew. */
  function signedValue (session: RedisSession, received: VerifiedCookie | undefined): string {
    return received !== undefined && !received.stale && received.id === session.id ? received.value : signer.sign(session.id)
  }
}

/** The plugin, wrapped by fastify-plugin so its decorators and hooks reach the whole app. */
export const plugin = fp(redisSessions, {
  fastify: '^5.0.0',
  name: 'fastify-redis-sessions'
})
