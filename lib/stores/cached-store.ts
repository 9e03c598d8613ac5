import type { Cluster, Redis } from 'ioredis'
import type { Codec, SessionRecordData } from '../codec.js'
import type { CacheOptions } from '../options.js'
import type { LoadedSession, SaveRequest, SaveResult, SessionDetails, LayoutStore, StoreOptions } from './store.js'
import type { StringStore } from './string-store.js'

/** What a cached session keeps: enough to rebuild it, the data as its encoded payload. */
interface Entry {
  /** the encoded data, decoded anew for every request that reads it */
  payload: string
  createdAt: number
  timeout: number | undefined
  owner: string | undefined
  info: string | undefined
  expiresAt: number | undefined
  /** ms since epoch when this session's expiry in Redis was last set, by us, at the latest */
  slidAt: number
}

/** A read or save under way: its reply may fill the cache only if it is still the key's latest and nothing invalidated the key meanwhile. */
type Ticket = object

/**
 * The string layout's store with the sessions this process used recently kept in memory, so a
 * read of one costs no round trip. Redis keeps it true: the tracking connection (tracking.ts)
 * calls `invalidate` with the keys another client changed, and `disable` whenever invalidations
 * could be missed, which empties the cache and bypasses it until `enable`.
 *
 * A reply that raced with an invalidation of its key is never cached (Redis's client-side caching
 * reference): each read or save takes a ticket before it is sent; an invalidation tears up the
 * key's ticket, and the reply fills the cache only while its ticket is still the key's.
 */
export class CachedStore implements LayoutStore {
  readonly client: Redis | Cluster
  readonly #store: StringStore
  readonly #codec: Codec
  readonly #prefix: string
  /** seconds; 0 = never expires */
  readonly #timeout: number
  readonly #redisTtl: boolean
  readonly #maxEntries: number
  /** ms */
  readonly #touchAfter: number
  readonly #onSlideError: (err: Error) => void
  /** least recently used first: a Map iterates in insertion order, and a hit moves its entry to the end */
  readonly #entries = new Map<string, Entry>()
  readonly #tickets = new Map<string, Ticket>()
  #enabled = false

  constructor (store: StringStore, options: StoreOptions, cache: Required<CacheOptions>, onSlideError: (err: Error) => void) {
    this.client = store.client
    this.#store = store
    this.#codec = options.codec
    this.#prefix = options.prefix
    this.#timeout = options.timeout
    this.#redisTtl = options.redisTtl
    this.#maxEntries = cache.maxEntries
    this.#touchAfter = cache.touchAfter * 1000
    this.#onSlideError = onSlideError
  }

  /** Invalidations are on their way from now on: reads may fill the cache. */
  enable (): void {
    this.#enabled = true
  }

  /** Invalidations may be missed from now on: the cache is emptied and bypassed until `enable`. */
  disable (): void {
    this.#enabled = false
    this.#entries.clear()
    this.#tickets.clear()
  }

  /** Keys another client changed, or null when Redis flushed a database. */
  invalidate (keys: Buffer[] | null): void {
    if (keys === null) {
      this.#entries.clear()
      this.#tickets.clear()
      return
    }
    for (const key of keys) {
      const name = key.toString()
      if (name.startsWith(this.#prefix)) this.#forget(name.slice(this.#prefix.length))
    }
  }

  /**
   * The session from memory, or undefined when Redis must be asked (`load`). A hit costs no
   * promise and no round trip; it slides the expiry in Redis once `touchAfter` has passed.
   */
  cached (id: string): LoadedSession | undefined {
    if (!this.#enabled) return undefined
    const entry = this.#entries.get(id)
    if (entry === undefined) return undefined
    const now = Date.now()
    this.#entries.delete(id)
    if (!this.#liveInRedis(entry, now)) return undefined
    const session = this.#revive(entry)
    if (session === undefined) return undefined
    this.#entries.set(id, entry)
    if (now - entry.slidAt >= this.#touchAfter) this.#slide(id, entry, now)
    return session
  }

  /** Reads the session from Redis (see `cached` for a read from memory), and keeps it while no invalidation raced with the read. */
  load (id: string): Promise<LoadedSession | null> {
    if (!this.#enabled) return this.#store.load(id)
    const ticket = this.#ticket(id)
    const sentAt = Date.now()
    return this.#store.load(id).then((record) => {
      if (this.#redeem(id, ticket) && record !== null) {
        const { snapshot, createdAt, timeout, owner, info, expiresAt } = record
        this.#remember(id, { payload: snapshot as string, createdAt, timeout, owner, info, expiresAt, slidAt: sentAt })
      }
      return record
    }, (err: unknown) => {
      this.#redeem(id, ticket)
      throw err
    })
  }

  async save (request: SaveRequest): Promise<SaveResult> {
    if (!this.#enabled) return await this.#store.save(request)
    const record = this.#store.encode(request)
    if (request.previousId !== undefined) this.#forget(request.previousId)
    const { id, session } = request
    const ticket = this.#ticket(id)
    const sentAt = Date.now()
    let result: SaveResult | undefined
    try {
      result = await this.#store.write(request, record)
    } finally {
      if (this.#redeem(id, ticket) && result === 'saved') {
        const { payload, expiresAt } = record
        this.#remember(id, { payload, createdAt: session.createdAt, timeout: session.timeout, owner: session.owner, info: session.info, expiresAt, slidAt: sentAt })
      } else {
        // what is cached is older than what Redis now holds (or the save failed, or lost to a destroy)
        this.#entries.delete(id)
      }
    }
    return result
  }

  holds (snapshot: unknown, data: SessionRecordData): boolean {
    return this.#store.holds(snapshot, data)
  }

  async destroy (id: string): Promise<boolean> {
    this.#forget(id)
    return await this.#store.destroy(id)
  }

  /** Asks Redis: the owner index checks sessions through it, and it slides nothing. */
  async get (id: string): Promise<SessionRecordData | null> {
    return await this.#store.get(id)
  }

  async describe (id: string): Promise<SessionDetails | null> {
    return await this.#store.describe(id)
  }

  async sweep (): Promise<number> {
    return await this.#store.sweep()
  }

  async ping (): Promise<void> {
    await this.#store.ping()
  }

  /**
   * This read or save is now the key's latest; an earlier one still under way will not fill the
   * cache. What is cached stays served meanwhile, as Redis would have served it just before.
   */
  #ticket (id: string): Ticket {
    const ticket = {}
    this.#tickets.set(id, ticket)
    return ticket
  }

  /** True when the reply of the call that took `ticket` may fill the cache. */
  #redeem (id: string, ticket: Ticket): boolean {
    if (this.#tickets.get(id) !== ticket) return false
    this.#tickets.delete(id)
    return true
  }

  #forget (id: string): void {
    this.#entries.delete(id)
    this.#tickets.delete(id)
  }

  #remember (id: string, entry: Entry): void {
    this.#entries.set(id, entry)
    if (this.#entries.size > this.#maxEntries) this.#entries.delete(this.#entries.keys().next().value as string)
  }

  /** The session's own timeout or the configured one, in seconds; 0 = never expires. */
  #timeoutOf (entry: Entry): number {
    return this.#redisTtl ? entry.timeout ?? this.#timeout : 0
  }

  /** False once Redis may have expired the key (its invalidation can still be on its way). */
  #liveInRedis (entry: Entry, now: number): boolean {
    const timeout = this.#timeoutOf(entry)
    return timeout === 0 || now < entry.slidAt + timeout * 1000
  }

  /** Slides the expiry without making the request wait; a failure is logged and the next read tries again. */
  #slide (id: string, entry: Entry, now: number): void {
    const timeout = this.#timeoutOf(entry)
    if (timeout === 0) return
    const previous = entry.slidAt
    entry.slidAt = now
    this.client.expire(this.#prefix + id, timeout).catch((err: Error) => {
      entry.slidAt = previous
      this.#onSlideError(err)
    })
  }

  /** The session an entry keeps; undefined when a `decode` hook no longer takes what it took before, so Redis answers (and reports it). */
  #revive (entry: Entry): LoadedSession | undefined {
    const { payload, createdAt, timeout, owner, info, expiresAt } = entry
    try {
      return { data: this.#codec.decode(payload), snapshot: payload, createdAt, timeout, owner, info, expiresAt }
    } catch {
      return undefined
    }
  }
}
