import type { SessionRecordData } from './codec.js'
import type { VerifiedCookie } from './cookie.js'
import { generateId } from './id.js'
import { encodeInfo, type SessionInfo } from './session-info.js'
import { MAX_TIMEOUT } from './stores/record.js'
import type { LoadedSession, StoredSession } from './stores/store.js'

/**
 * Your session data, typed by declaration merging.
 * @example
 * declare module 'fastify-redis-sessions' {
 *   interface SessionData { views: number, user: { id: string } }
 * }
 */
export interface SessionData {
  [key: string]: unknown
  /** flash messages by type, shared with @fastify/flash */
  flash?: Record<string, string[]>
}

/** `request.session`: data access plus the session's lifecycle. */
export interface Session {
  /** 43 base64url characters (256 random bits) */
  readonly id: string
  /** true until the session has been stored once */
  readonly isNew: boolean
  /** ms since epoch */
  readonly createdAt: number
  /**
   * True when the request came with a valid cookie whose session no longer exists (it expired,
   * or was ended elsewhere): this is a new session in its place. For the whole request, whatever it does.
   * @example
   * if (request.session.ended) request.flash('info', 'Your session has ended, please sign in again.')
   */
  readonly ended: boolean
  /**
   * The value of `key`, or `defaultValue` when it is absent. Keys declared in `SessionData`
   * are typed; any other key is `unknown`.
   * @example
   * const views = request.session.get('views', 0) + 1
   */
  get<K extends keyof SessionData & string>(key: K): SessionData[K] | undefined
  get<K extends keyof SessionData & string>(key: K, defaultValue: Exclude<SessionData[K], undefined>): Exclude<SessionData[K], undefined>
  /** Stores `value` under `key`; `undefined` deletes it. */
  set<K extends keyof SessionData & string>(key: K, value: SessionData[K] | undefined): this
  has (key: keyof SessionData & string): boolean
  delete (key: keyof SessionData & string): boolean
  /** Removes all data. */
  clear (): void
  keys (): string[]
  /** The data only: no metadata, no flash. */
  toJSON (): Partial<SessionData>
  /** Marks the session modified after a nested mutation (only needed with `detectChanges: false`). */
  changed (): void
  /**
   * A new id, and the old record deleted in the same round trip as the save: call it on login.
   * Without `keep` the session starts afresh, as in express-session and @fastify/session: no data,
   * no owner, the configured timeout, a new `createdAt` and so a new `absoluteTimeout` lifetime (so
   * a logout that regenerates leaves nothing behind). With `keep`, the listed keys stay, and so do
   * the owner and its info, the session's own timeout and its `createdAt`: its absolute lifetime goes on.
   * @example
   * await request.session.regenerate()                           // login, logout
   * await request.session.regenerate(['cart'])                   // login, keeping the cart
   * await request.session.regenerate(request.session.keys())     // a new id, everything kept
   */
  regenerate (keep?: Array<keyof SessionData & string>): Promise<void>
  /** Deletes the record now and expires the cookie; the request goes on with an empty new session. */
  destroy (): Promise<void>
  /** Extends the expiry and refreshes the cookie without changing data. */
  touch (): void
  /** This session's own timeout in seconds from now on, stored with it ("remember me"); 0 = never expires. */
  adjustTimeout (seconds: number): void
  /**
   * Files the session under `owner` (a user id), so `fastify.sessionStore.listByOwner(owner)` and
   * `destroyByOwner(owner)` find it: "log out everywhere". `info`, a JSON object of at most 1 KiB
   * as JSON (such as the device's user agent and address), is stored with the session and listed
   * by `listByOwner`; a larger one, or one that is no plain object, throws FST_RS_INVALID_INFO (a
   * TypeError). Each call replaces both: without `info` the session has none.
   * @example
   * await request.session.regenerate()
   * request.session.setOwner(user.id, { userAgent: request.headers['user-agent']?.slice(0, 200), ip: request.ip })
   */
  setOwner (owner: string, info?: SessionInfo): void
  /** Flash messages without consuming them: of one type, or all. */
  peekFlash (): Record<string, string[]>
  peekFlash (type: string): string[]
}

/** What the session needs from its surroundings: the store's destroy, without knowing the store. */
export type DestroyRecord = (id: string, owner: string | undefined) => Promise<void>

/** A record of the session library being replaced (`migrateFrom`) that a session took over. */
export interface AdoptedRecord {
  /** where it is kept, deleted in the round trip of the session's first save */
  key: string
  /** deletes it at once (the session is destroyed before it was ever saved) */
  destroy: () => Promise<void>
}

interface SessionState {
  id: string | undefined
  isNew: boolean
  createdAt: number
  timeout: number | undefined
  owner: string | undefined
  /** setOwner's info, encoded as stored */
  info: string | undefined
  /** the owner the stored record has, whose index lists it */
  storedOwner: string | undefined
  /** a stored record this session replaces: deleted when it is saved (regenerate, undecodable record) */
  previousId: string | undefined
  /** the old library's record this session took over, until it is saved or destroyed */
  adopted: AdoptedRecord | undefined
  /** modified through the API, so there is no need to compare */
  modified: boolean
  touched: boolean
  destroyed: boolean
  loadedKeys: string[]
  loadedValues: unknown[]
  snapshot: unknown
  /** LRU mode: when the loaded record expires */
  expiresAt: number | undefined
  /** the valid signed cookie the request came with */
  cookie: VerifiedCookie | undefined
  /** the request failed with an error (only tracked when `cookieOnException` is off) */
  failed: boolean
  /** the save ran (or was skipped) once; an error response must not save again */
  settled: boolean
  /** the save is on its way to Redis */
  saving: boolean
  /** the request's cookie named a session that no longer exists */
  ended: boolean
  /** the stored session a regenerate() replaces, until the save */
  regeneratedFrom: string | undefined
}

export type ChangeState = 'changed' | 'unknown' | 'unchanged'

const FLASH = 'flash'

export class RedisSession implements Session {
  readonly #state: SessionState
  readonly #destroyRecord: DestroyRecord;
  [key: string]: unknown

  /** A new session, or (with `record`) the stored one the signed `cookie` names. */
  constructor (destroyRecord: DestroyRecord, cookie?: VerifiedCookie, record?: LoadedSession) {
    this.#destroyRecord = destroyRecord
    this.#state = {
      id: record === undefined ? undefined : cookie?.id,
      isNew: record === undefined,
      createdAt: record?.createdAt ?? Date.now(),
      timeout: record?.timeout,
      owner: record?.owner,
      info: record?.info,
      storedOwner: record?.owner,
      previousId: undefined,
      adopted: undefined,
      modified: false,
      touched: false,
      destroyed: false,
      loadedKeys: [],
      loadedValues: [],
      snapshot: record?.snapshot,
      expiresAt: record?.expiresAt,
      cookie,
      failed: false,
      settled: false,
      saving: false,
      ended: false,
      regeneratedFrom: undefined
    }
    if (record !== undefined) this.#adopt(record.data)
  }

  get id (): string {
    this.#state.id ??= generateId()
    return this.#state.id
  }

  get isNew (): boolean {
    return this.#state.isNew
  }

  get createdAt (): number {
    return this.#state.createdAt
  }

  get ended (): boolean {
    return this.#state.ended
  }

  get<K extends keyof SessionData & string>(key: K): SessionData[K] | undefined
  get<K extends keyof SessionData & string>(key: K, defaultValue: Exclude<SessionData[K], undefined>): Exclude<SessionData[K], undefined>
  get (key: string, defaultValue?: unknown): unknown {
    return Object.hasOwn(this, key) ? this[key] : defaultValue
  }

  set<K extends keyof SessionData & string>(key: K, value: SessionData[K] | undefined): this
  set (key: string, value: unknown): this {
    if (value === undefined) {
      this.delete(key)
      return this
    }
    if (isReserved(key)) throw new TypeError(`"${key}" is reserved by the session and cannot hold data`)
    this[key] = value
    this.#state.modified = true
    return this
  }

  has (key: string): boolean {
    return Object.hasOwn(this, key)
  }

  delete (key: string): boolean {
    if (!Object.hasOwn(this, key)) return false
    delete this[key]
    this.#state.modified = true
    return true
  }

  clear (): void {
    for (const key of Object.keys(this)) delete this[key]
    this.#state.modified = true
  }

  keys (): string[] {
    return Object.keys(this)
  }

  toJSON (): Partial<SessionData> {
    const { [FLASH]: _flash, ...data } = this
    return data
  }

  changed (): void {
    this.#state.modified = true
  }

  async regenerate (keep?: string[]): Promise<void> {
    for (const key of Object.keys(this)) if (keep === undefined || !keep.includes(key)) delete this[key]
    // without `keep`, a session of its own: the next person at this browser inherits nothing
    if (keep === undefined) {
      this.#state.owner = undefined
      this.#state.info = undefined
      this.#state.timeout = undefined
      this.#state.createdAt = Date.now()
    }
    this.#replaceRecord()
    this.#state.modified = true
  }

  async destroy (): Promise<void> {
    const state = this.#state
    // the stored record: this session's, or the one a regenerate() earlier in this request replaces
    const stored = state.isNew ? state.previousId : this.id
    if (stored !== undefined) await this.#destroyRecord(stored, state.storedOwner)
    await state.adopted?.destroy()
    state.adopted = undefined
    for (const key of Object.keys(this)) delete this[key]
    state.id = undefined
    state.isNew = true
    state.previousId = undefined
    state.regeneratedFrom = undefined
    state.modified = false
    state.destroyed = true
    state.createdAt = Date.now()
    state.timeout = undefined
    state.owner = undefined
    state.info = undefined
    state.storedOwner = undefined
    state.loadedKeys = []
    state.loadedValues = []
  }

  touch (): void {
    this.#state.touched = true
  }

  adjustTimeout (seconds: number): void {
    // Redis refuses an EXPIRE whose deadline overflows
    if (!Number.isInteger(seconds) || seconds < 0 || seconds > MAX_TIMEOUT) {
      throw new TypeError(`adjustTimeout takes a whole number of seconds from 0 to ${MAX_TIMEOUT}`)
    }
    this.#state.timeout = seconds
    this.#state.modified = true
  }

  setOwner (owner: string, info?: SessionInfo): void {
    if (typeof owner !== 'string' || owner === '') throw new TypeError('setOwner takes a non-empty string')
    this.#state.info = info === undefined ? undefined : encodeInfo(info)
    this.#state.owner = owner
    this.#state.modified = true
  }

  peekFlash (): Record<string, string[]>
  peekFlash (type: string): string[]
  peekFlash (type?: string): Record<string, string[]> | string[] {
    const flash = (this[FLASH] ?? {}) as Record<string, string[]>
    return type === undefined ? flash : Object.hasOwn(flash, type) ? flash[type] : []
  }

  /** A stored record this session came from is to be deleted when it is saved under a new id. */
  #replaceRecord (): void {
    const state = this.#state
    if (!state.isNew) {
      state.previousId ??= state.id
      state.regeneratedFrom = state.previousId
    }
    state.id = undefined
    state.isNew = true
    state.destroyed = false
  }

  #adopt (data: SessionRecordData): void {
    const state = this.#state
    for (const key of Object.keys(data)) {
      // names of methods and Object.prototype (including __proto__) never come from storage
      if (isReserved(key)) continue
      this[key] = data[key]
      state.loadedKeys.push(key)
      state.loadedValues.push(data[key])
    }
  }

  /** Internals the plugin reads and keeps; not part of the public `Session`. */
  static internals (session: RedisSession): SessionState {
    return session.#state
  }

  /**
   * A fresh session that replaces the record `cookie` names, which could not be used: `ended` when
   * there is none (or it expired), not when it does not decode.
   */
  static replacing (destroyRecord: DestroyRecord, cookie: VerifiedCookie, ended: boolean): RedisSession {
    const session = new RedisSession(destroyRecord, cookie)
    session.#state.previousId = cookie.id
    session.#state.ended = ended
    return session
  }

  /** The stored session this one's next save replaces by regenerate(), if any. */
  static regeneratedFrom (session: RedisSession): string | undefined {
    return session.#state.regeneratedFrom
  }

  /** A new session holding the data of `adopted`, stored on this response whether or not the data changes. */
  static adopting (destroyRecord: DestroyRecord, data: SessionRecordData, adopted: AdoptedRecord): RedisSession {
    const session = new RedisSession(destroyRecord)
    session.#adopt(data)
    session.#state.adopted = adopted
    session.#state.modified = true
    return session
  }

  static markFailed (session: RedisSession): void {
    session.#state.failed = true
  }

  /** True the first time only: one save per request, even when an error response follows. */
  static settle (session: RedisSession): boolean {
    const state = session.#state
    if (state.settled) return false
    state.settled = true
    return true
  }

  /** Whether the data differs from what was loaded: cheaply decided, or 'unknown' when only the encoding can tell. */
  static changeState (session: RedisSession, detectChanges: boolean): ChangeState {
    const state = session.#state
    if (state.modified) return 'changed'
    const keys = Object.keys(session)
    if (keys.length !== state.loadedKeys.length) return 'changed'
    let nested = false
    for (let i = 0; i < keys.length; i++) {
      const value = session[keys[i]]
      if (keys[i] !== state.loadedKeys[i] || value !== state.loadedValues[i]) return 'changed'
      if (typeof value === 'object' && value !== null) nested = true
    }
    return nested && detectChanges ? 'unknown' : 'unchanged'
  }

  static toStored (session: RedisSession): StoredSession {
    const state = session.#state
    return { data: { ...session }, createdAt: state.createdAt, timeout: state.timeout, owner: state.owner, info: state.info }
  }

  /** Owner index changes the next save carries: a new id or a new owner joins, a replaced one leaves. */
  static ownerChanges (session: RedisSession): { index?: string, unindex?: { owner: string, id: string } } {
    const { owner, storedOwner, isNew, previousId } = session.#state
    const moved = previousId !== undefined || owner !== storedOwner
    return {
      index: owner !== undefined && (isNew || owner !== storedOwner) ? owner : undefined,
      unindex: storedOwner !== undefined && moved ? { owner: storedOwner, id: previousId ?? session.id } : undefined
    }
  }

  /** After a successful save the session is no longer new, and what was saved is the new baseline. */
  static markSaved (session: RedisSession): void {
    const state = session.#state
    state.isNew = false
    state.previousId = undefined
    state.regeneratedFrom = undefined
    state.adopted = undefined
    state.modified = false
    state.storedOwner = state.owner
  }
}

function isReserved (key: string): boolean {
  return key in RedisSession.prototype
}
