import type { Cluster, Redis } from 'ioredis'
import type { SessionRecordData, Stored } from '../codec.js'
import { bucketKeys, bucketOf, sweepBuckets, type BucketKeys } from './buckets.js'
import { LIFETIME_CUT, NOW, requireExistence, TIMEOUT_OF } from './lua.js'
import { decodeRecord, encodeRecord, headerOf, holdsRecord, sessionDetails } from './record.js'
import { adoptedKeys, defineScript, readRecord, sendSave, unavailableOnError } from './redis-calls.js'
import type { LoadedSession, SaveRequest, SaveResult, SessionDetails, LayoutStore, StoreOptions } from './store.js'

// KEYS: bucket, index · ARGV: id, default timeout, '1' to slide the expiry, absoluteTimeout.
// HGET plus the sliding ZADD in one round trip; a session past its score counts as gone before any sweep.
const LOAD_SCRIPT = `
${TIMEOUT_OF}
${LIFETIME_CUT}
local record = redis.call('HGET', KEYS[1], ARGV[1])
if not record then return false end
local expiresAt = redis.call('ZSCORE', KEYS[2], ARGV[1])
${NOW}
if expiresAt and tonumber(expiresAt) <= now then return false end
if ARGV[3] == '1' then
  local ttl = lifetimeCut(record, timeoutOf(record, ARGV[2]), ARGV[4], now)
  if ttl > 0 then redis.call('ZADD', KEYS[2], now + ttl * 1000, ARGV[1]) end
end
return record`

// KEYS: bucket, index · ARGV: id, record, '1' the record must exist ('0' must not), seconds to
// live ('' = not indexed: LRU mode; 0 = never expires)
const SAVE_SCRIPT = `
${requireExistence("redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1", 'ARGV[3]')}
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local ttl = tonumber(ARGV[4])
if ttl == 0 then
  redis.call('ZREM', KEYS[2], ARGV[1])
elseif ttl then
  ${NOW}
  redis.call('ZADD', KEYS[2], now + ttl * 1000, ARGV[1])
end
return 1`

const LOAD_COMMAND = 'fastifyRedisSessionsBucketLoad'
const SAVE_COMMAND = 'fastifyRedisSessionsBucketSave'

interface ScriptedClient {
  [command: string]: (hash: string, index: string, ...args: Array<string | number | Buffer>) => Promise<unknown>
}

export interface BucketedStoreOptions extends StoreOptions {
  buckets: number
}

/**
 * Sessions as fields of a fixed number of bucket hashes (django-redisession's hash mode), each
 * value a whole record as in the string layout. Redis cannot expire a hash field, so each bucket
 * has an index of expiry times: loads ignore expired sessions, `sweep()` removes them.
 */
export class BucketedStore implements LayoutStore {
  readonly client: Redis | Cluster
  readonly #options: BucketedStoreOptions
  readonly #scripted: ScriptedClient
  /** the load script, or its Buffer variant when records may be compressed */
  readonly #load: string

  constructor (options: BucketedStoreOptions) {
    this.client = options.client
    this.#options = options
    defineScript(this.client, LOAD_COMMAND, 2, LOAD_SCRIPT)
    defineScript(this.client, SAVE_COMMAND, 2, SAVE_SCRIPT)
    this.#scripted = this.client as unknown as ScriptedClient
    this.#load = LOAD_COMMAND + (options.codec.binary ? 'Buffer' : '')
  }

  async load (id: string): Promise<LoadedSession | null> {
    const stored = await this.#read(id, true)
    return stored === null ? null : decodeRecord(this.#options.codec, stored)
  }

  async get (id: string): Promise<SessionRecordData | null> {
    const stored = await this.#read(id, false)
    return stored === null ? null : decodeRecord(this.#options.codec, stored).data
  }

  /** The record's header, and its end in the bucket's index (none in LRU mode), in one round trip. */
  async describe (id: string): Promise<SessionDetails | null> {
    const { client, redisTtl } = this.#options
    const { hash, index } = this.#keys(id)
    const [stored, end] = await readRecord(Promise.all([client.hget(hash, id), redisTtl ? client.zscore(index, id) : null]))
    if (stored === null) return null
    return sessionDetails(id, headerOf(stored), end === null ? undefined : Number(end), this.#options)
  }

  async save (request: SaveRequest): Promise<SaveResult> {
    const { client, codec, redisTtl, replicas } = this.#options
    const record = encodeRecord(codec, this.#options, request)
    const { hash, index } = this.#keys(request.id)
    const args = [request.id, record.value, request.isNew ? '0' : '1', redisTtl ? record.timeout : '']
    const write = this.#scripted[SAVE_COMMAND](hash, index, ...args)
    const previous = request.previousId === undefined ? [] : [request.previousId]
    const adopted = adoptedKeys(request)
    const alongside = [...previous.flatMap((old) => this.#remove(old)), ...adopted.map(async (key) => await client.del(key))]
    return await sendSave(client, replicas, write, alongside, 0, [hash, ...previous.map((old) => this.#keys(old).hash), ...adopted])
  }

  holds (snapshot: unknown, data: SessionRecordData): boolean {
    return holdsRecord(this.#options.codec, snapshot, data)
  }

  async destroy (id: string): Promise<boolean> {
    const [removed] = await unavailableOnError(Promise.all(this.#remove(id)))
    return removed === 1
  }

  async sweep (): Promise<number> {
    const { client, prefix, buckets } = this.#options
    return await unavailableOnError(sweepBuckets(client, prefix, buckets))
  }

  async ping (): Promise<void> {
    await unavailableOnError(this.client.ping())
  }

  #keys (id: string): BucketKeys {
    return bucketKeys(this.#options.prefix, bucketOf(id, this.#options.buckets))
  }

  /** LRU mode keeps no index: a plain HGET, expiry is read from the record's header. */
  async #read (id: string, slide: boolean): Promise<Stored | null> {
    const { client, codec, redisTtl, timeout } = this.#options
    const { hash, index } = this.#keys(id)
    const read = redisTtl
      ? this.#scripted[this.#load](hash, index, id, timeout, slide ? '1' : '0', this.#options.absoluteTimeout) as Promise<Stored | null>
      : codec.binary ? client.hgetBuffer(hash, id) : client.hget(hash, id)
    return await readRecord(read)
  }

  #remove (id: string): Array<Promise<unknown>> {
    const { hash, index } = this.#keys(id)
    const removed = [this.client.hdel(hash, id)]
    return this.#options.redisTtl ? [...removed, this.client.zrem(index, id)] : removed
  }
}
