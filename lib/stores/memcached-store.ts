import type { Codec, SessionRecordData, Stored } from '../codec.js'
import { FST_RS_SESSION_TOO_LARGE, FST_RS_STORE_UNAVAILABLE, FST_RS_UNSUPPORTED } from '../errors.js'
import memjs from 'memjs'
import { exptime, Opcode, pingAll, request, Status, type MemcachedClient } from '../memcached-connection.js'
import { decodeRecord, encodeRecord, expiryAfterRead, holdsRecord, readSlide, type Expiry } from './record.js'
import type { LoadedSession, SaveRequest, SaveResult, SessionBackend, SessionDetails } from './store.js'

export interface MemcachedStoreOptions extends Expiry {
  client: MemcachedClient
  codec: Codec
  prefix: string
  /** ms a request may wait for Memcached */
  commandTimeout: number
}

// the item's flags, which nobody here reads, before its expiry
const NO_FLAGS = Buffer.alloc(4)

/**
 * Sessions in Memcached, one item per session in the string layout's record format. A read is one
 * get-and-touch (GAT), so the expiry slides in the read's round trip; a save of an existing
 * session is a REPLACE (it fails once the session was destroyed or regenerated) and of a new one
 * an ADD (it fails when the id is taken); a regenerate's delete travels beside the save.
 * Memcached keeps no sets, and may evict any item, so no owner index could stay exact: there is none.
 */
export class MemcachedStore implements SessionBackend<MemcachedClient> {
  readonly client: MemcachedClient
  readonly #options: MemcachedStoreOptions
  /** seconds a read's GAT slides the expiry to (the configured timeout); undefined: a plain GET */
  readonly #readSlide: number | undefined

  constructor (options: MemcachedStoreOptions) {
    this.client = options.client
    this.#options = options
    this.#readSlide = readSlide(options)
  }

  async load (id: string): Promise<LoadedSession | null> {
    const key = this.#options.prefix + id
    const slide = this.#readSlide
    const record = await this.#read(slide === undefined ? Opcode.GET : Opcode.GAT, key, slide === undefined ? '' : memjs.Utils.makeExpiration(exptime(slide)))
    if (record === null) return null
    // its own timeout, or the cut at its absolute end: set after the read, unawaited (the next read sets it again should it fail)
    const seconds = expiryAfterRead(record, this.#options)
    if (seconds !== undefined) this.#send(Opcode.TOUCH, key, memjs.Utils.makeExpiration(exptime(seconds))).catch(() => {})
    return record
  }

  async get (id: string): Promise<SessionRecordData | null> {
    return (await this.#read(Opcode.GET, this.#options.prefix + id))?.data ?? null
  }

  async save (saving: SaveRequest): Promise<SaveResult> {
    if (saving.index !== undefined || saving.unindex !== undefined) throw noOwnerIndex('setOwner()')
    const record = encodeRecord(this.#options.codec, this.#options, saving)
    const { prefix, redisTtl } = this.#options
    const extras = Buffer.concat([NO_FLAGS, memjs.Utils.makeExpiration(redisTtl ? exptime(record.timeout) : 0)])
    const write = this.#send(saving.isNew ? Opcode.ADD : Opcode.REPLACE, prefix + saving.id, extras, record.value)
    const previous = saving.previousId === undefined ? undefined : this.#send(Opcode.DELETE, prefix + saving.previousId)
    const [response] = await Promise.all([write, previous])
    const { status } = response.header
    // ADD finds the id taken (EXISTS; NOT_STORED in some servers), REPLACE finds the session gone
    if (status === Status.EXISTS || status === Status.NOT_STORED || status === Status.NOT_FOUND) return 'lost'
    if (status === Status.TOO_LARGE) {
      throw new FST_RS_SESSION_TOO_LARGE(Buffer.byteLength(record.value), 'what Memcached stores in one item (1 MB unless memcached runs with a larger -I, which counts the key and item header too); keep less in the session, lower maxSize below that limit, or raise -I')
    }
    this.#expect(status, Status.OK, 'save')
    return 'saved'
  }

  holds (snapshot: unknown, data: SessionRecordData): boolean {
    return holdsRecord(this.#options.codec, snapshot, data)
  }

  async destroy (id: string): Promise<boolean> {
    return (await this.#send(Opcode.DELETE, this.#options.prefix + id)).header.status === Status.OK
  }

  /** Memcached expires items itself: nothing to sweep. */
  async sweep (): Promise<number> {
    return 0
  }

  async ping (): Promise<void> {
    await pingAll(this.client, this.#options.commandTimeout)
  }

  async listByOwner (): Promise<SessionDetails[]> {
    throw noOwnerIndex('listByOwner()')
  }

  async destroyByOwner (): Promise<number> {
    throw noOwnerIndex('destroyByOwner()')
  }

  /** Nothing runs in the background. */
  async settle (): Promise<void> {}

  /** No connections of its own. */
  close (): void {}

  async #send (opcode: number, key: string, extras?: Buffer | string, value?: Stored): ReturnType<typeof request> {
    return await request(this.client, this.#options.commandTimeout, opcode, key, extras, value)
  }

  /** The session a GET or GAT finds; null when there is none. */
  async #read (opcode: number, key: string, extras?: Buffer | string): Promise<LoadedSession | null> {
    const response = await this.#send(opcode, key, extras)
    if (response.header.status === Status.NOT_FOUND) return null
    this.#expect(response.header.status, Status.OK, 'read')
    return decodeRecord(this.#options.codec, this.#stored(response.val))
  }

  /** What was stored, as the codec reads it: bytes once compression is on. */
  #stored (value: Buffer): Stored {
    return this.#options.codec.binary ? value : value.toString()
  }

  /** Any other answer (out of memory, busy) is the store failing: a 503. */
  #expect (status: number, expected: number, what: string): void {
    if (status !== expected) throw new FST_RS_STORE_UNAVAILABLE(`Memcached refused the ${what} with status 0x${status.toString(16)}`)
  }
}

function noOwnerIndex (what: string): Error {
  return new FST_RS_UNSUPPORTED(`${what} needs the owner index, which Memcached cannot keep (no sets, and any item may be evicted): keep sessions in Redis to list or end a user's sessions`)
}
