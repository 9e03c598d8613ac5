import type { SessionRecordData, Stored } from '../codec.js'
import { FST_RS_DECODE_FAILED } from '../errors.js'
import { EXPIRE_IN, LIFETIME_CUT, requireExistence, TIMEOUT_OF } from './lua.js'
import { formatHeader, loadedSession } from './record.js'
import { adoptedKeys, defineScript, readRecord, sendSave } from './redis-calls.js'
import { KeyPerSessionStore } from './key-per-session.js'
import type { LoadedSession, SaveRequest, SaveResult, SessionDetails, LayoutStore, StoreOptions } from './store.js'

// The header sits beside the data under a name no data key can have: the Session refuses every
// name JavaScript objects inherit, so none of them ever comes from storage as data.
const META = '__proto__'

// HGETALL plus (ARGV[2] '1') the sliding EXPIRE in one round trip; ARGV[3] absoluteTimeout, ARGV[4] now (ms)
const LOAD_SCRIPT = `
${TIMEOUT_OF}
${LIFETIME_CUT}
${EXPIRE_IN}
local fields = redis.call('HGETALL', KEYS[1])
if #fields == 0 then return false end
if ARGV[2] == '1' then
  local header = redis.call('HGET', KEYS[1], '${META}') or ''
  local ttl = lifetimeCut(header, timeoutOf(header, ARGV[1]), ARGV[3], tonumber(ARGV[4]))
  if ttl > 0 then expireIn(KEYS[1], ttl) end
end
return fields`

// ARGV: '1' the hash must exist ('0' must not), seconds to live ('' leaves the TTL alone: LRU
// mode; 0 = never), the number of fields to delete, those fields, then field/value pairs to set
const SAVE_SCRIPT = `
${EXPIRE_IN}
${requireExistence("redis.call('EXISTS', KEYS[1]) == 1", 'ARGV[1]')}
-- ARGV[first..last] in chunks: unpack() passes at most a few thousand values at once
local function send(command, first, last)
  for i = first, last, 1000 do redis.call(command, KEYS[1], unpack(ARGV, i, math.min(i + 999, last))) end
end
local deletions = tonumber(ARGV[3])
send('HDEL', 4, 3 + deletions)
send('HSET', 4 + deletions, #ARGV)
local ttl = tonumber(ARGV[2])
if ttl == 0 then redis.call('PERSIST', KEYS[1]) elseif ttl then expireIn(KEYS[1], ttl) end
return 1`

const LOAD_COMMAND = 'fastifyRedisSessionsHashLoad'
const SAVE_COMMAND = 'fastifyRedisSessionsHashSave'

interface ScriptedClient {
  [command: string]: (key: string, ...args: Array<string | number | Buffer>) => Promise<unknown>
}

/** What was loaded, to write only the difference. */
interface HashSnapshot {
  meta: string
  /** per data field: its encoded value, and what is stored (that text, or compressed bytes) */
  fields: Map<string, { payload: string, stored: Stored }>
}

const NOTHING_STORED: HashSnapshot = { meta: '', fields: new Map() }

/**
 * One Redis hash per session, one field per session key, each value encoded on its own (the
 * encode/decode hooks see single values), plus the header under a reserved field name.
 * A save writes only the fields that differ from what was loaded, so concurrent requests that
 * change different keys of one session all keep their changes.
 */
export class HashStore extends KeyPerSessionStore implements LayoutStore {
  readonly #options: StoreOptions
  readonly #scripted: ScriptedClient
  /** the load script, or its Buffer variant when values may be compressed */
  readonly #load: string

  constructor (options: StoreOptions) {
    super(options)
    this.#options = options
    defineScript(this.client, LOAD_COMMAND, 1, LOAD_SCRIPT)
    defineScript(this.client, SAVE_COMMAND, 1, SAVE_SCRIPT)
    this.#scripted = this.client as unknown as ScriptedClient
    this.#load = LOAD_COMMAND + (options.codec.binary ? 'Buffer' : '')
  }

  async load (id: string): Promise<LoadedSession | null> {
    return await this.#read(id, this.#options.redisTtl)
  }

  async get (id: string): Promise<SessionRecordData | null> {
    return (await this.#read(id, false))?.data ?? null
  }

  async describe (id: string): Promise<SessionDetails | null> {
    return await this.detailsOf(id, this.client.hget(this.#options.prefix + id, META), (header) => header)
  }

  /** Compares field by field: only what changed is written. */
  async save (request: SaveRequest): Promise<SaveResult> {
    const { client, codec, prefix, redisTtl, replicas } = this.#options
    const before = request.isNew ? NOTHING_STORED : request.snapshot as HashSnapshot
    const { header, timeout } = formatHeader(request.session, this.#options)
    const changed: Stored[] = []
    const stored: Stored[] = [META, header]
    const payloads: string[] = []
    if (header !== before.meta) changed.push(META, header)
    const kept = new Set<string>()
    for (const [field, value] of Object.entries(request.session.data)) {
      const payload = codec.encodeValue(value)
      if (payload === undefined) continue
      payloads.push(payload)
      const old = before.fields.get(field)
      const packed = old?.payload === payload ? old.stored : codec.pack(payload)
      if (packed !== old?.stored) changed.push(field, packed)
      stored.push(field, packed)
      kept.add(field)
    }
    const deleted = [...before.fields.keys()].filter((field) => !kept.has(field))
    if (changed.length === 0 && deleted.length === 0) return 'unchanged'
    codec.checkEncodedSize(payloads)
    codec.checkSize(stored)
    request.written = stored

    const args = [request.isNew ? '0' : '1', redisTtl ? timeout : '', deleted.length, ...deleted, ...changed]
    const key = prefix + request.id
    const write = this.#scripted[SAVE_COMMAND](key, ...args)
    const previous = [...(request.previousId === undefined ? [] : [prefix + request.previousId]), ...adoptedKeys(request)]
    const alongside = previous.map(async (old) => await client.del(old))
    return await sendSave(client, replicas, write, alongside, 0, [key, ...previous])
  }

  /** Compares the encoded values field by field (the keys are those loaded: other keys are a change the session sees itself). */
  holds (snapshot: unknown, data: SessionRecordData): boolean {
    const { fields } = snapshot as HashSnapshot
    for (const [field, { payload }] of fields) if (this.#options.codec.encodeValue(data[field]) !== payload) return false
    return true
  }

  async #read (id: string, slide: boolean): Promise<LoadedSession | null> {
    const { prefix, timeout, absoluteTimeout } = this.#options
    const reply = await readRecord(this.#scripted[this.#load](prefix + id, timeout, slide ? '1' : '0', absoluteTimeout, Date.now())) as Stored[] | null
    return reply === null ? null : this.#parse(reply)
  }

  #parse (reply: Stored[]): LoadedSession {
    const { codec } = this.#options
    const fields: HashSnapshot['fields'] = new Map()
    const entries: Array<[string, unknown]> = []
    let meta: string | undefined
    // a save keeps the values within maxInflated together, so together they inflate to no more
    let inflatable = codec.maxInflated
    for (let i = 0; i < reply.length; i += 2) {
      const field = reply[i].toString()
      const stored = reply[i + 1]
      if (field === META) {
        meta = stored.toString()
        continue
      }
      const payload = codec.unpack(stored, inflatable)
      inflatable -= payload.length
      fields.set(field, { payload, stored })
      entries.push([field, codec.decodeValue(payload)])
    }
    if (meta === undefined) throw new FST_RS_DECODE_FAILED('the session hash has no header field')
    // fromEntries defines own properties, so not even a stored `__proto__` reaches a prototype
    const snapshot: HashSnapshot = { meta, fields }
    return loadedSession(meta, Object.fromEntries(entries), snapshot, reply)
  }
}
