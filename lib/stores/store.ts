import type { Cluster, Redis } from 'ioredis'
import type { Codec, SessionRecordData, Stored } from '../codec.js'
import type { SessionInfo } from '../session-info.js'

/** What every layout keeps of a session. */
export interface StoredSession {
  data: SessionRecordData
  /** ms since epoch */
  createdAt: number
  /** the session's own timeout in seconds (`adjustTimeout`); undefined = the configured one */
  timeout: number | undefined
  /** whose session it is (`setOwner`), for "log out everywhere" */
  owner: string | undefined
  /** what `setOwner` was told of the device, as stored: base64url of its JSON */
  info: string | undefined
}

/** One of an owner's sessions, as `fastify.sessionStore.listByOwner(owner)` lists it. */
export interface SessionDetails {
  id: string
  /** ms since epoch */
  createdAt: number
  /**
   * ms since epoch of the session's last request, as told by its sliding expiry (to within the
   * cache's `touchAfter`, or in LRU mode a tenth of the timeout); null when it never expires. When
   * `absoluteTimeout` cut the expiry, the earliest that last request can have been.
   */
  lastSeenAt: number | null
  /** ms since epoch when the session ends unless used again; null when it never expires */
  expiresAt: number | null
  /** what `setOwner(owner, info)` was given, or null */
  info: SessionInfo | null
}

export interface LoadedSession extends StoredSession {
  /** LRU mode: ms since epoch after which the record counts as expired; undefined = never */
  expiresAt: number | undefined
  /** what the layout needs to tell a change from none (the string layout keeps the stored payload) */
  snapshot: unknown
  /** what Redis returned, measured only when the load is traced; absent on a cached read */
  stored?: Stored | readonly Stored[]
}

export interface SaveRequest {
  id: string
  session: StoredSession
  /** true: store only if no record exists; false: only if it still exists (a destroy or regenerate wins) */
  isNew: boolean
  /** the record loaded at the start of the request; undefined for a new session */
  snapshot?: unknown
  /** a record to delete in the same round trip (regenerate) */
  previousId?: string
  /** a key outside the layout to delete in the same round trip (the old library's record a take-over replaces) */
  adoptedKey?: string
  /** add this session's id to the index of that owner (a new id, or a new owner) */
  index?: string
  /** remove an id from an owner's index (the record regenerate replaces, or an owner changed) */
  unindex?: { owner: string, id: string }
  /** set by the layout: what the save writes, measured only when the save is traced */
  written?: Stored | readonly Stored[]
}

/** saved · unchanged: nothing to write · lost: the record was destroyed or regenerated meanwhile */
export type SaveResult = 'saved' | 'unchanged' | 'lost'

/** One storage layout; knows its engine (Redis, or Memcached with `Client`), not Fastify. */
export interface Store<Client = Redis | Cluster> {
  readonly client: Client
  /** Reads a session and slides its expiry, in one round trip. */
  load (id: string): Promise<LoadedSession | null>
  save (request: SaveRequest): Promise<SaveResult>
  /**
   * True when `data`, with the keys the record loaded as `snapshot` had, is what it holds: values
   * handed out may have been changed in place, and this tells, without a round trip, whether there is anything to save.
   */
  holds (snapshot: unknown, data: SessionRecordData): boolean
  /** Deletes a session (with its `owner`, also from that owner's index); true when there was one. */
  destroy (id: string, owner?: string): Promise<boolean>
  /** Reads a session's data without sliding its expiry. */
  get (id: string): Promise<SessionRecordData | null>
  /** Removes expired sessions Redis does not expire itself; resolves to how many. */
  sweep (): Promise<number>
  ping (): Promise<void>
}

/** A Redis layout's store, which the owner index can ask for a session's details. */
export interface LayoutStore extends Store {
  /**
   * A session's details, read with its remaining lifetime in one round trip without sliding it;
   * null when there is no live session. Rejects with FST_RS_DECODE_FAILED when the record does not decode.
   */
  describe (id: string): Promise<SessionDetails | null>
}

/** A store as the plugin holds it: with the owner index, and background work to finish before its client closes. */
export interface SessionBackend<Client = Redis | Cluster> extends Store<Client> {
  /** Ids of the live sessions filed under `owner`. */
  listByOwner (owner: string): Promise<SessionDetails[]>
  /** Ends every session of `owner`; resolves to how many. */
  destroyByOwner (owner: string): Promise<number>
  /** Resolves once the background work under way is done. */
  settle (): Promise<void>
  /** Closes the connections the store opened itself, once `settle()` resolved. */
  close (): void
}

/** What `npx fastify-redis-sessions stats` reports of a layout's sessions. */
export interface SessionStats {
  sessions: number
  /** what Redis reports (`MEMORY USAGE`) for the keys that hold them */
  bytes: number
}

/** What every layout is built from. */
export interface StoreOptions {
  client: Redis | Cluster
  codec: Codec
  prefix: string
  /** seconds; 0 = never expires */
  timeout: number
  /** seconds after createdAt a session ends; 0 = off */
  absoluteTimeout: number
  /** false = LRU mode: no TTL in Redis, expiry kept in the record */
  redisTtl: boolean
  /** every save waits (`WAIT`) until this many replicas have it */
  replicas: { count: number, timeout: number } | undefined
}
