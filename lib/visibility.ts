import { tracingChannel } from 'node:diagnostics_channel'
import { EventEmitter } from 'node:events'
import type { FastifyBaseLogger } from 'fastify'
import type { Stored } from './codec.js'
import type { Guard } from './stores/index.js'
import type { LoadedSession, SaveRequest, SaveResult, Store } from './stores/store.js'

/**
 * What the tracing channels `fastify-redis-sessions:load`, `:save` and `:destroy` publish. Never
 * the session id nor the cookie: spans and metrics built from it cannot leak a session.
 * @example
 * import { tracingChannel } from 'node:diagnostics_channel'
 * tracingChannel('fastify-redis-sessions:load').subscribe({
 *   start () {}, end () {}, asyncStart () {}, error () {},
 *   asyncEnd (context) { console.log(context.layout, context.outcome, context.bytes) }
 * })
 */
export interface SessionTraceContext {
  /** the store's layout, or `'memcached'` for sessions in Memcached */
  layout: 'string' | 'hash' | 'bucketed' | 'memcached'
  /**
   * Set once the operation is done. load: `loaded` or `missing` (no record, or an expired one);
   * save: `saved`, `unchanged` (nothing to write) or `lost` (to a destroy or regenerate
   * meanwhile); destroy: `destroyed` or `missing`.
   */
  outcome?: 'loaded' | 'missing' | 'saved' | 'unchanged' | 'lost' | 'destroyed'
  /** the size in Redis of the record loaded or saved, where the store knows it (a cached read does not) */
  bytes?: number
  /** set by diagnostics_channel on the `error` event: FST_RS_STORE_UNAVAILABLE when Redis does not answer */
  error?: unknown
}

/** A session the store's lifecycle events tell of. */
export interface SessionEvent {
  id: string
  /** the owner `setOwner` filed it under, where known */
  owner: string | undefined
}

/**
 * The events of `fastify.sessionStore` and what each listener gets.
 * @example
 * fastify.sessionStore.on('destroyed', ({ id, owner }) => audit.log('session ended', owner))
 */
export interface SessionStoreEvents {
  /** a new session was stored for the first time */
  created: [SessionEvent]
  /** `regenerate()` stored the session under a new id; `previousId` is gone */
  regenerated: [SessionEvent & { previousId: string }]
  /** a stored session was deleted (`session.destroy()`, `sessionStore.destroy()`, `destroyByOwner()`), once per session */
  destroyed: [SessionEvent]
  /**
   * A request came with a valid cookie whose session no longer exists (expired, or ended
   * elsewhere). Best effort: noticed when the browser comes back, not by a timer.
   */
  expired: [SessionEvent]
}

type Operation = 'load' | 'save' | 'destroy'

const channels = {
  load: tracingChannel<unknown, SessionTraceContext>('fastify-redis-sessions:load'),
  save: tracingChannel<unknown, SessionTraceContext>('fastify-redis-sessions:save'),
  destroy: tracingChannel<unknown, SessionTraceContext>('fastify-redis-sessions:destroy')
}

/**
 * Everything the plugin tells the world: the tracing channels and the store's lifecycle events,
 * at the few points the plugin and the owner index call. Without a subscriber nor a listener
 * each call is the store call alone: no context, no closure.
 */
export class Visibility {
  readonly events = new EventEmitter<SessionStoreEvents>()
  readonly #layout: SessionTraceContext['layout']
  readonly #log: FastifyBaseLogger
  /** whether a loaded record is still a session (not expired in LRU mode, its absolute lifetime not over) */
  readonly #usable: (record: LoadedSession) => boolean

  constructor (layout: SessionTraceContext['layout'], log: FastifyBaseLogger, usable: (record: LoadedSession) => boolean) {
    this.#layout = layout
    this.#log = log
    this.#usable = usable
  }

  /** Loads the session a valid cookie names: null when it no longer exists, which emits `expired`. */
  load (store: Store<unknown>, id: string): Promise<LoadedSession | null> {
    const found = channels.load.hasSubscribers ? this.#trace('load', () => store.load(id), this.#loaded) : store.load(id)
    return found.then((record) => this.#sessionOf(id, record))
  }

  /**
   * As `load`, for a session the local cache had: its load is published all at once (start, end,
   * asyncStart, asyncEnd), so a subscriber sees every load end the same way.
   */
  fromCache (id: string, record: LoadedSession): LoadedSession | null {
    if (channels.load.hasSubscribers) {
      const context: SessionTraceContext = { layout: this.#layout }
      channels.load.start.runStores(context, () => {
        this.#loaded(context, record)
        channels.load.end.publish(context)
        channels.load.asyncStart.publish(context)
        channels.load.asyncEnd.publish(context)
      })
    }
    return this.#sessionOf(id, record)
  }

  /** The loaded record while it is a session; else null, and `expired` is emitted. */
  #sessionOf (id: string, record: LoadedSession | null): LoadedSession | null {
    if (record !== null && this.#usable(record)) return record
    this.#emit('expired', { id, owner: record?.owner })
    return null
  }

  /** the outcome of a traced load: a record that is no longer a session counts as missing */
  readonly #loaded = (context: SessionTraceContext, record: LoadedSession | null): void => {
    context.outcome = record !== null && this.#usable(record) ? 'loaded' : 'missing'
    context.bytes = sizeOf(record?.stored)
  }

  /** Saves; the first save of a session emits `created`, or `regenerated` when it replaces `regeneratedFrom`. */
  save (store: Store<unknown>, request: SaveRequest, regeneratedFrom: string | undefined): Promise<SaveResult> {
    const saving = channels.save.hasSubscribers ? this.#trace('save', () => store.save(request), (context, result) => { saved(context, result, request) }) : store.save(request)
    if (!request.isNew || this.events.listenerCount(regeneratedFrom === undefined ? 'created' : 'regenerated') === 0) return saving
    // a new session's save stores it or fails: its write is conditional on a fresh random id only
    return saving.then((result) => {
      const event = { id: request.id, owner: request.session.owner }
      if (regeneratedFrom === undefined) this.#emit('created', event)
      else this.#emit('regenerated', { ...event, previousId: regeneratedFrom })
      return result
    })
  }

  /** Deletes a session; when one was there, emits `destroyed` with `owner`, where the caller knows it. */
  async destroy (store: Store<unknown>, id: string, owner: string | undefined): Promise<boolean> {
    const destroyed = await (channels.destroy.hasSubscribers ? this.#trace('destroy', () => store.destroy(id), destroyedOrMissing) : store.destroy(id))
    if (destroyed) this.#emit('destroyed', { id, owner })
    return destroyed
  }

  /** Whether anyone listens to `event`: worth a round trip to tell its listeners more. */
  heard (event: keyof SessionStoreEvents): boolean {
    return this.events.listenerCount(event) > 0
  }

  /**
   * `error`, which stops a load or save before it is sent (Redis is known to be down): published
   * on the operation's channel as a call that failed at once (start, error, end).
   */
  refused (operation: Operation, error: Error): Error {
    if (channels[operation].hasSubscribers) {
      try {
        channels[operation].traceSync(() => { throw error }, { layout: this.#layout })
      } catch {}
    }
    return error
  }

  /** `guard`, with what it refuses at once (Redis known to be down) published as `refused` destroys. */
  guardingDestroys (guard: Guard): Guard {
    return async (call) => {
      let ran = false
      try {
        return await guard(async () => {
          ran = true
          return await call()
        })
      } catch (err) {
        if (!ran) this.refused('destroy', err as Error)
        throw err
      }
    }
  }

  /**
   * Publishes `call` on the operation's tracing channel as `tracePromise` does (start, end, then
   * error, asyncStart, asyncEnd), `settle` telling the outcome, but without publishing the result:
   * a loaded record holds the session's data. The call is made (lazily) under `start.runStores`,
   * so an APM's `bindStore` on `start` sees the store's commands run in its context.
   */
  #trace<T> (operation: Operation, call: () => Promise<T>, settle: (context: SessionTraceContext, result: T) => void): Promise<T> {
    const channel = channels[operation]
    const context: SessionTraceContext = { layout: this.#layout }
    return channel.start.runStores(context, () => {
      // store calls return promises: none throws synchronously
      try {
        return call().then((result) => {
          settle(context, result)
          channel.asyncStart.publish(context)
          channel.asyncEnd.publish(context)
          return result
        }, (error: unknown) => {
          context.error = error
          channel.error.publish(context)
          channel.asyncStart.publish(context)
          channel.asyncEnd.publish(context)
          throw error
        })
      } finally {
        channel.end.publish(context)
      }
    })
  }

  /** Calls each listener on its own: one that throws or rejects is logged and breaks nothing. */
  #emit<E extends keyof SessionStoreEvents> (event: E, ...args: SessionStoreEvents[E]): void {
    if (this.events.listenerCount(event) === 0) return
    // rawListeners: a `once` listener's wrapper, which removes it as it runs
    for (const listener of this.events.rawListeners(event) as Array<(...args: unknown[]) => unknown>) {
      try {
        const returned = listener.apply(this.events, args)
        if (returned instanceof Promise) returned.catch((err: unknown) => this.#listenerFailed(event, err))
      } catch (err) {
        this.#listenerFailed(event, err)
      }
    }
  }

  #listenerFailed (event: string, err: unknown): void {
    this.#log.error({ err, event }, `a sessionStore '${event}' listener failed`)
  }
}

function saved (context: SessionTraceContext, result: SaveResult, request: SaveRequest): void {
  context.outcome = result
  if (result === 'saved') context.bytes = sizeOf(request.written)
}

function destroyedOrMissing (context: SessionTraceContext, found: boolean): void {
  context.outcome = found ? 'destroyed' : 'missing'
}

/** Bytes of what a store read or wrote: a value, or a hash's fields and values. */
function sizeOf (stored: Stored | readonly Stored[] | undefined): number | undefined {
  if (stored === undefined) return undefined
  if (!Array.isArray(stored)) return Buffer.byteLength(stored as Stored)
  let bytes = 0
  for (const part of stored as readonly Stored[]) bytes += Buffer.byteLength(part)
  return bytes
}
