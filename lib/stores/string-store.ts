import type { Cluster, Redis } from 'ioredis'
import type { SessionRecordData, Stored } from '../codec.js'
import { decodeRecord, encodeRecord, expiryAfterRead, headerOf, holdsRecord, readSlide, type EncodedRecord } from './record.js'
import { adoptedKeys, readRecord, sendSave, unreadable } from './redis-calls.js'
import { KeyPerSessionStore } from './key-per-session.js'
import type { LoadedSession, SaveRequest, SaveResult, SessionDetails, LayoutStore, StoreOptions } from './store.js'

type Read = (key: string) => Promise<Stored | null>

/**
 * One string key per session: `<own timeout>:<createdAt>:<expiresAt>|<payload>`.
 * A read is one `GETEX` that slides the expiry, a write one `SET` made conditional on the
 * record's existence.
 */
export class StringStore extends KeyPerSessionStore implements LayoutStore {
  readonly #options: StoreOptions
  /** GET, and the GETEX that slides the configured timeout; their Buffer variants when records may be compressed */
  readonly #get: Read
  readonly #load: Read

  constructor (options: StoreOptions) {
    super(options)
    const { client, codec } = options
    this.#options = options
    // plain arrows: the hot path is not worth another async frame
    this.#get = codec.binary ? (key) => client.getBuffer(key) : (key) => client.get(key)
    const slide = readSlide(options)
    this.#load = slide === undefined
      ? this.#get
      : codec.binary ? (key) => client.getexBuffer(key, 'EX', slide) : (key) => client.getex(key, 'EX', slide)
  }

  load (id: string): Promise<LoadedSession | null> {
    const key = this.#options.prefix + id
    return this.#load(key).then((stored) => {
      if (stored === null) return null
      const record = decodeRecord(this.#options.codec, stored)
      slideExpiry(this.client, key, record, this.#options)
      return record
    }, unreadable)
  }

  async get (id: string): Promise<SessionRecordData | null> {
    const stored = await readRecord(this.#get(this.#options.prefix + id))
    return stored === null ? null : decodeRecord(this.#options.codec, stored).data
  }

  async describe (id: string): Promise<SessionDetails | null> {
    return await this.detailsOf(id, this.#get(this.#options.prefix + id), headerOf)
  }

  async save (request: SaveRequest): Promise<SaveResult> {
    return await this.write(request, this.encode(request))
  }

  holds (snapshot: unknown, data: SessionRecordData): boolean {
    return holdsRecord(this.#options.codec, snapshot, data)
  }

  /** What a save of `request` writes. */
  encode (request: SaveRequest): EncodedRecord {
    return encodeRecord(this.#options.codec, this.#options, request)
  }

  /** Writes the record `encode` made of `request`. */
  async write (request: SaveRequest, record: EncodedRecord): Promise<SaveResult> {
    const { client, prefix, redisTtl, replicas } = this.#options
    const key = prefix + request.id
    // one SET overload serves both conditions
    const condition = (request.isNew ? 'NX' : 'XX') as 'NX'
    const write = redisTtl && record.timeout > 0
      ? client.set(key, record.value, 'PX', Math.floor(record.timeout * 1000), condition)
      : client.set(key, record.value, condition)
    const previous = [...(request.previousId === undefined ? [] : [prefix + request.previousId]), ...adoptedKeys(request)]
    const alongside = previous.map(async (old) => await client.del(old))
    return await sendSave(client, replicas, write, alongside, null, [key, ...previous])
  }
}

/**
 * A session with its own timeout (`adjustTimeout`) lives by that one, not by the GETEX's, and
 * with `absoluteTimeout` a plain GET read it: set the expiry right after the read, unawaited, so
 * the request still waits for a single round trip. Should it fail, the next read sets it again.
 */
function slideExpiry (client: Redis | Cluster, key: string, record: LoadedSession, options: StoreOptions): void {
  const seconds = expiryAfterRead(record, options)
  if (seconds === undefined) return
  const slide = seconds === 0 ? client.persist(key) : options.absoluteTimeout > 0 ? client.pexpire(key, Math.floor(seconds * 1000)) : client.expire(key, seconds)
  slide.catch(() => {})
}
