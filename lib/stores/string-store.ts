import type { SessionRecordData, Stored } from '../codec.js'
import { timeoutOf } from './lua.js'
import { decodeRecord, encodeRecord } from './record.js'
import { defineScript, sendSave, unavailableOnError } from './redis-calls.js'
import { KeyPerSessionStore } from './key-per-session.js'
import type { LoadedSession, SaveRequest, SaveResult, Store, StoreOptions } from './store.js'

// GET plus the sliding EXPIRE in one round trip; a record's own timeout leads its header.
const LOAD_SCRIPT = `
local value = redis.call('GET', KEYS[1])
if not value then return false end
local ttl = ${timeoutOf('value', 'ARGV[1]')}
if ttl > 0 then redis.call('EXPIRE', KEYS[1], ttl) end
return value`

const LOAD_COMMAND = 'fastifyRedisSessionsLoad'

type Read = (key: string) => Promise<Stored | null>
type ScriptedClient = Record<string, (key: string, defaultTimeout: number) => Promise<Stored | null>>

/**
 * One string key per session: `<own timeout>:<createdAt>:<expiresAt>|<payload>`.
 * Reads cost one command, writes one `SET` made conditional on the record's existence.
 */
export class StringStore extends KeyPerSessionStore implements Store {
  readonly #options: StoreOptions
  /** GET, and the load script where it slides the expiry; their Buffer variants when records may be compressed */
  readonly #get: Read
  readonly #load: Read

  constructor (options: StoreOptions) {
    super(options)
    const { client, codec, redisTtl, timeout } = options
    this.#options = options
    defineScript(client, LOAD_COMMAND, 1, LOAD_SCRIPT)
    const scripted = client as unknown as ScriptedClient
    const load = LOAD_COMMAND + (codec.binary ? 'Buffer' : '')
    this.#get = codec.binary ? async (key) => await client.getBuffer(key) : async (key) => await client.get(key)
    this.#load = redisTtl ? async (key) => await scripted[load](key, timeout) : this.#get
  }

  async load (id: string): Promise<LoadedSession | null> {
    const stored = await unavailableOnError(this.#load(this.#options.prefix + id))
    return stored === null ? null : decodeRecord(this.#options.codec, stored)
  }

  async get (id: string): Promise<SessionRecordData | null> {
    const stored = await unavailableOnError(this.#get(this.#options.prefix + id))
    return stored === null ? null : decodeRecord(this.#options.codec, stored).data
  }

  async save (request: SaveRequest): Promise<SaveResult> {
    const { client, codec, prefix, redisTtl, replicas } = this.#options
    const record = encodeRecord(codec, this.#options, request)
    if (record === undefined) return 'unchanged'
    const key = prefix + request.id
    // one SET overload serves both conditions
    const condition = (request.isNew ? 'NX' : 'XX') as 'NX'
    const write = redisTtl && record.timeout > 0
      ? client.set(key, record.value, 'EX', record.timeout, condition)
      : client.set(key, record.value, condition)
    const previous = request.previousId === undefined ? [] : [prefix + request.previousId]
    const alongside = previous.map(async (old) => await client.del(old))
    return await sendSave(client, replicas, write, alongside, null, [key, ...previous])
  }
}
