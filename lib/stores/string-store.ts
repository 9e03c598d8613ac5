import type { Cluster, Redis } from 'ioredis'
import type { Codec, SessionRecordData } from '../codec.js'
import { FST_RS_DECODE_FAILED, FST_RS_STORE_UNAVAILABLE } from '../errors.js'
import type { LoadedSession, SaveRequest, SaveResult, Store } from './store.js'

export interface StoreOptions {
  client: Redis | Cluster
  codec: Codec
  prefix: string
  /** seconds; 0 = never expires */
  timeout: number
  /** false = LRU mode: no TTL in Redis, expiry kept in the record */
  redisTtl: boolean
  replicas: { count: number, timeout: number } | undefined
}

// GET plus the sliding EXPIRE in one round trip; a record's own timeout leads its header.
const LOAD_SCRIPT = `
local value = redis.call('GET', KEYS[1])
if not value then return false end
local ttl = tonumber(string.match(value, '^(%d+):')) or tonumber(ARGV[1])
if ttl > 0 then redis.call('EXPIRE', KEYS[1], ttl) end
return value`

const LOAD_COMMAND = 'fastifyRedisSessionsLoad'

type ScriptedClient = (Redis | Cluster) & {
  [LOAD_COMMAND]: (key: string, defaultTimeout: number) => Promise<string | null>
}

/**
 * One string key per session: `<own timeout>:<createdAt>:<expiresAt>|<payload>`.
 * Reads cost one command, writes one `SET` made conditional on the record's existence.
 */
export class StringStore implements Store {
  readonly client: Redis | Cluster
  readonly #client: ScriptedClient
  readonly #codec: Codec
  readonly #prefix: string
  readonly #timeout: number
  readonly #redisTtl: boolean
  readonly #replicas: StoreOptions['replicas']

  constructor (options: StoreOptions) {
    this.client = options.client
    this.#client = options.client as ScriptedClient
    this.#codec = options.codec
    this.#prefix = options.prefix
    this.#timeout = options.timeout
    this.#redisTtl = options.redisTtl
    this.#replicas = options.replicas
    // defined once per client, shared by every registration that uses it
    if (typeof this.#client[LOAD_COMMAND] !== 'function') {
      this.client.defineCommand(LOAD_COMMAND, { numberOfKeys: 1, lua: LOAD_SCRIPT })
    }
  }

  async load (id: string): Promise<LoadedSession | null> {
    const key = this.#prefix + id
    const stored = this.#redisTtl
      ? await unavailableOnError(this.#client[LOAD_COMMAND](key, this.#timeout))
      : await unavailableOnError(this.client.get(key))
    return stored === null ? null : this.#parse(stored)
  }

  async get (id: string): Promise<SessionRecordData | null> {
    const stored = await unavailableOnError(this.client.get(this.#prefix + id))
    return stored === null ? null : this.#parse(stored).data
  }

  async save (request: SaveRequest): Promise<SaveResult> {
    const { session } = request
    const payload = this.#codec.encode(session.data)
    if (request.onlyIfChanged && payload === request.snapshot) return 'unchanged'

    const timeout = session.timeout ?? this.#timeout
    const expiresAt = !this.#redisTtl && timeout > 0 ? Date.now() + timeout * 1000 : ''
    const value = `${session.timeout ?? ''}:${session.createdAt}:${expiresAt}|${payload}`
    this.#codec.checkSize(value)

    const key = this.#prefix + request.id
    // one SET overload serves both conditions
    const condition = (request.isNew ? 'NX' : 'XX') as 'NX'
    const commands: Array<Promise<unknown>> = [
      this.#redisTtl && timeout > 0
        ? this.client.set(key, value, 'EX', timeout, condition)
        : this.client.set(key, value, condition)
    ]
    if (request.previousId !== undefined) commands.push(this.client.del(this.#prefix + request.previousId))
    if (this.#replicas !== undefined) commands.push(this.client.wait(this.#replicas.count, this.#replicas.timeout))
    const replies = await unavailableOnError(Promise.all(commands))
    if (replies[0] === null) return 'lost'
    if (this.#replicas !== undefined) this.#checkReplicas(replies[replies.length - 1] as number)
    return 'saved'
  }

  async destroy (id: string): Promise<void> {
    await unavailableOnError(this.client.del(this.#prefix + id))
  }

  async ping (): Promise<void> {
    await unavailableOnError(this.client.ping())
  }

  #checkReplicas (acknowledged: number): void {
    const { count } = this.#replicas as { count: number }
    if (acknowledged < count) throw new FST_RS_STORE_UNAVAILABLE(`${acknowledged} of ${count} replicas acknowledged the save`)
  }

  #parse (stored: string): LoadedSession {
    const bar = stored.indexOf('|')
    const header = bar === -1 ? [] : stored.slice(0, bar).split(':')
    if (header.length !== 3) throw new FST_RS_DECODE_FAILED('the record has no valid header')
    const payload = stored.slice(bar + 1)
    return {
      data: this.#codec.decode(payload),
      timeout: header[0] === '' ? undefined : Number(header[0]),
      createdAt: Number(header[1]),
      expiresAt: header[2] === '' ? undefined : Number(header[2]),
      snapshot: payload
    }
  }
}

/** Any Redis failure becomes FST_RS_STORE_UNAVAILABLE (503) with the original as cause. */
async function unavailableOnError<T> (promise: Promise<T>): Promise<T> {
  try {
    return await promise
  } catch (err) {
    throw new FST_RS_STORE_UNAVAILABLE((err as Error).message, { cause: err })
  }
}
