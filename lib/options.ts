import Type, { type TSchema } from 'typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Cluster, Redis } from 'ioredis'
import type { Compression, CompressionAlgorithm } from './codec.js'
import { MAX_COOKIE_AGE, securePrefixOf, type CookieAttributes } from './cookie.js'
import { FST_RS_INVALID_OPTIONS } from './errors.js'
import type { MemcachedOptions } from './memcached-connection.js'
import type { MigrateFromOptions, ResolvedMigration } from './migrate.js'
import { schemaProblems } from './schema-problems.js'
import { MAX_TIMEOUT } from './stores/record.js'

/** TLS settings for the Redis connection (PEM strings or Buffers). */
export interface TlsSettings {
  ca?: string | Buffer | Array<string | Buffer>
  cert?: string | Buffer
  key?: string | Buffer
  servername?: string
}

export interface RedisNode {
  host: string
  port: number
}

/** Options of `app.register(redisSession, options)`; only `secret` is required. */
export interface RedisSessionOptions {
  /** At least 32 characters, or a list: the first signs, all verify (rotation). */
  secret: string | string[]
  /** `redis://user:pass@host:port/db`, or `rediss://` for TLS. */
  url?: string
  host?: string
  port?: number
  db?: number
  /** ACL user name. */
  username?: string
  password?: string
  /** Unix socket path of the Redis server. */
  socketPath?: string
  tls?: boolean | TlsSettings
  /** Accept any server certificate (testing only). */
  tlsSkipVerify?: boolean
  sentinel?: {
    sentinels: RedisNode[]
    name: string
    password?: string
    username?: string
    tls?: boolean | TlsSettings
  }
  cluster?: { nodes: RedisNode[] }
  /** An ioredis client you own; the plugin never closes it. */
  client?: Redis | Cluster
  /**
   * Keep the sessions in Memcached instead of Redis: its servers (spread by consistent hashing;
   * a server lost loses its sessions) with SASL credentials, or a memjs client you own. Options
   * only Redis has (`layout` other than `'string'`, `replicas`, `cache`, `migrateFrom`, the Redis
   * connection options) are refused beside it, and there is no owner index (`setOwner`).
   * @example
   * { memcached: { servers: ['10.0.0.1:11211', '10.0.0.2:11211'], username: 'app', password: process.env.MEMCACHED_PASSWORD } }
   */
  memcached?: MemcachedOptions
  /** ms to wait for a connection; default 5000 */
  connectTimeout?: number
  /** ms any Redis command may take before the request gets a 503; default 2000 */
  commandTimeout?: number
  /** Key prefix; default `sess:` */
  prefix?: string
  /** Sliding timeout in seconds, at most a century; `0` or `null` never expires; default 1200 */
  timeout?: number | null
  /**
   * Absolute lifetime in seconds: a session ends this long after it was created, however active
   * (OWASP's absolute timeout, beside the idle `timeout`). No expiry is set past it and
   * `adjustTimeout()` cannot extend it; `regenerate()` starts a new lifetime, `regenerate(keep)`
   * keeps the old one. Default off.
   * @example
   * { timeout: 1800, absoluteTimeout: 8 * 3600 } // 30 minutes idle, 8 hours at most
   */
  absoluteTimeout?: number
  /** `false` = LRU mode: no TTL in Redis, expiry enforced from stored times; default true */
  redisTtl?: boolean
  /** Save nested mutations without `changed()`; default true */
  detectChanges?: boolean
  /** Turns session data into the stored payload; default JSON.stringify. With `layout: 'hash'` it gets one value at a time. */
  encode?: (data: Record<string, unknown>) => string
  /** Inverse of `encode`; default JSON.parse. With `layout: 'hash'` it returns one value at a time. */
  decode?: (payload: string) => Record<string, unknown>
  /** An undecodable record gives a fresh session instead of a 500; default false */
  deserializationFailsNew?: boolean
  /** Largest stored session in bytes, as stored (compressed, with `compress`); default 1 MiB */
  maxSize?: number
  /**
   * Storage layout; default `'string'`. `'string'`: one key per session, the whole session
   * rewritten on change. `'hash'`: one Redis hash per session, a save writes only the keys that
   * changed, so concurrent requests changing different keys all keep their changes; the
   * encode/decode hooks then see one value at a time. `'bucketed'`: sessions as fields of
   * `buckets` shared hashes, for the least memory per session when Redis keeps those hashes
   * small (`hash-max-listpack-value`); expired sessions are removed by `sweep()`.
   * @example
   * { layout: 'bucketed', buckets: 1024, sweepInterval: 60 }
   */
  layout?: 'string' | 'hash' | 'bucketed'
  /** `layout: 'bucketed'` only: the number of bucket hashes; default 65536 */
  buckets?: number
  /** `layout: 'bucketed'` only: seconds between automatic sweeps of expired sessions; default off */
  sweepInterval?: number
  /**
   * Compress encoded sessions (node:zlib) from `threshold` bytes on (default 400) with
   * `algorithm` (default `'deflate'`); smaller ones stay plain. Both kinds always decode, so it
   * can be turned on at any time. `maxSize` applies to the compressed bytes; decompression stops
   * at 16 MiB (or `maxSize`, if larger) against bombs, and a save beyond that is refused. Default false.
   * @example
   * { compress: { threshold: 1024, algorithm: 'brotli' } }
   */
  compress?: false | { threshold?: number, algorithm?: CompressionAlgorithm }
  /** Every save waits until this many replicas acknowledged it. */
  replicas?: { count: number, timeout: number }
  /**
   * Keep recently used sessions in this process's memory, kept true by Redis (`CLIENT TRACKING`,
   * Redis 6 or later): a read of a cached session sends no command. `maxEntries` (default 10000)
   * bounds the cache, least recently used out first; `touchAfter` (seconds, default a tenth of
   * `timeout`) is how often a cached read slides the session's expiry in Redis, so a session may
   * expire up to `touchAfter` early. String layout only; not with Redis Cluster yet. Default off.
   * @example
   * { cache: { maxEntries: 50000, touchAfter: 60 } }
   */
  cache?: boolean | CacheOptions
  /** default `session` */
  cookieName?: string
  /**
   * Merged with `{ path: '/', httpOnly: true, sameSite: 'lax', secure: 'auto' }`. `maxAge` is in
   * seconds, at most 400 days (what browsers keep). A new session whose cookie the browser would
   * drop (Secure on plain http) is not stored, and the cause is logged once.
   * @example
   * { cookie: { maxAge: 7 * 24 * 3600, sameSite: 'strict' } }
   */
  cookie?: Partial<CookieAttributes>
  /** Save the session and set the cookie on error responses too; default true */
  cookieOnException?: boolean
  /** Return false to send no Set-Cookie (a new session is then not stored either). */
  shouldSetCookie?: (request: FastifyRequest, reply: FastifyReply) => boolean
  /** Request property name; default `session`. The store is decorated as `<decorator>Store`. */
  decorator?: string
  /**
   * Take over the sessions of @fastify/session or express-session kept by connect-redis, so
   * switching logs nobody out: a request with a validly signed old cookie (and none of ours)
   * starts with the old session's data, which is stored in this plugin's format under a new id on
   * that response, while the old record is deleted and the old cookie expired.
   * @example
   * { migrateFrom: { cookieName: 'sessionId', secret: process.env.OLD_SESSION_SECRET } }      // @fastify/session
   * { migrateFrom: { cookieName: 'connect.sid', secret: 'keyboard cat', cookiePrefix: 's:' } } // express-session
   */
  migrateFrom?: MigrateFromOptions
}

/**
 * The `cache` option as an object (`cache: true` takes the defaults).
 * @example
 * const cache: CacheOptions = { maxEntries: 50000, touchAfter: 60 }
 */
export interface CacheOptions {
  /** the most sessions kept; default 10000 */
  maxEntries?: number
  /** seconds between expiry slides of a session served from the cache; default a tenth of `timeout` */
  touchAfter?: number
}

/** Options after defaults, as the rest of the plugin reads them. */
export interface ResolvedOptions {
  secrets: string[]
  connection: ConnectionOptions
  prefix: string
  /** seconds; 0 = never expires */
  timeout: number
  /** seconds after createdAt a session ends; 0 = off */
  absoluteTimeout: number
  redisTtl: boolean
  detectChanges: boolean
  encode: (data: Record<string, unknown>) => string
  decode: (payload: string) => Record<string, unknown>
  deserializationFailsNew: boolean
  maxSize: number
  layout: 'string' | 'hash' | 'bucketed'
  buckets: number
  /** seconds; undefined = no automatic sweeps */
  sweepInterval: number | undefined
  /** undefined = off */
  compress: Compression | undefined
  replicas: { count: number, timeout: number } | undefined
  /** undefined = off */
  cache: Required<CacheOptions> | undefined
  cookieName: string
  cookie: CookieAttributes
  cookieOnException: boolean
  shouldSetCookie: RedisSessionOptions['shouldSetCookie']
  decorator: string
  /** undefined = no take-over */
  migrateFrom: ResolvedMigration | undefined
}

export type ConnectionOptions = Pick<RedisSessionOptions,
  'url' | 'host' | 'port' | 'db' | 'username' | 'password' | 'socketPath' | 'tls' | 'tlsSkipVerify' |
  'sentinel' | 'cluster' | 'client' | 'memcached'> & { connectTimeout: number, commandTimeout: number }

const refined = (check: (value: unknown) => boolean, message: string): TSchema =>
  Type.Refine(Type.Unknown(), check, () => message)

const Fn = refined((value) => typeof value === 'function', 'must be a function')
const Bytes = (value: unknown): boolean => typeof value === 'string' || value instanceof Uint8Array
const TlsSchema = Type.Union([
  Type.Boolean(),
  Type.Object({
    ca: Type.Optional(refined((value) => Bytes(value) || (Array.isArray(value) && value.every(Bytes)), 'must be a PEM string, Buffer or an array of them')),
    cert: Type.Optional(refined(Bytes, 'must be a PEM string or Buffer')),
    key: Type.Optional(refined(Bytes, 'must be a PEM string or Buffer')),
    servername: Type.Optional(Type.String())
  }, { additionalProperties: false })
])
const Node = Type.Object({ host: Type.String({ minLength: 1 }), port: Type.Integer({ minimum: 1, maximum: 65535 }) }, { additionalProperties: false })
const Secret = Type.String({ minLength: 32, hint: 'generate one with `openssl rand -base64 48`' })
const Milliseconds = Type.Integer({ minimum: 1, unit: 'milliseconds' })
const CookieName = Type.String({ pattern: '^[!#$%&\'*+.^_`|~0-9A-Za-z-]+$', description: 'a cookie name: letters, digits and !#$%&\'*+.^_`|~- only (no spaces, ;, = or quotes)' })

// memjs reads `host[:port]`; credentials have options of their own
const MEMCACHED_SERVER = '[^\\s,@:]+(:\\d{1,5})?'
const SERVERS_DESCRIPTION = "'host:port' (or 'host' for port 11211), without credentials (give /memcached/username and /memcached/password)"

const optionSchemas: Record<keyof RedisSessionOptions, TSchema> = {
  secret: Type.Union([Secret, Type.Array(Secret, { minItems: 1 })]),
  url: Type.String({ pattern: '^rediss?://', description: 'a URL starting with redis:// (or rediss:// for TLS)' }),
  host: Type.String({ minLength: 1 }),
  port: Type.Integer({ minimum: 1, maximum: 65535 }),
  db: Type.Integer({ minimum: 0 }),
  username: Type.String(),
  password: Type.String(),
  socketPath: Type.String({ minLength: 1 }),
  tls: TlsSchema,
  tlsSkipVerify: Type.Boolean(),
  sentinel: Type.Object({
    sentinels: Type.Array(Node, { minItems: 1 }),
    name: Type.String({ minLength: 1 }),
    password: Type.Optional(Type.String()),
    username: Type.Optional(Type.String()),
    tls: Type.Optional(TlsSchema)
  }, { additionalProperties: false }),
  cluster: Type.Object({ nodes: Type.Array(Node, { minItems: 1 }) }, { additionalProperties: false }),
  client: refined((value) => typeof value === 'object' && value !== null && typeof (value as Redis).sendCommand === 'function', 'must be an ioredis Redis or Cluster instance'),
  memcached: Type.Object({
    servers: Type.Optional(Type.Union([
      Type.String({ pattern: `^${MEMCACHED_SERVER}(\\s*,\\s*${MEMCACHED_SERVER})*$`, description: SERVERS_DESCRIPTION }),
      Type.Array(Type.String({ pattern: `^${MEMCACHED_SERVER}$`, description: SERVERS_DESCRIPTION }), { minItems: 1 })
    ])),
    username: Type.Optional(Type.String({ minLength: 1 })),
    password: Type.Optional(Type.String()),
    client: Type.Optional(refined((value) => typeof (value as { perform?: unknown } | null)?.perform === 'function', 'must be a memjs Client instance'))
  }, { additionalProperties: false }),
  connectTimeout: Milliseconds,
  commandTimeout: Milliseconds,
  prefix: Type.String(),
  // Redis refuses an EXPIRE whose deadline overflows; stored headers are bounded the same
  timeout: Type.Union([Type.Integer({ minimum: 0, maximum: MAX_TIMEOUT, unit: 'seconds' }), Type.Null()]),
  absoluteTimeout: Type.Integer({ minimum: 1, maximum: MAX_TIMEOUT, unit: 'seconds' }),
  redisTtl: Type.Boolean(),
  detectChanges: Type.Boolean(),
  encode: Fn,
  decode: Fn,
  deserializationFailsNew: Type.Boolean(),
  maxSize: Type.Integer({ minimum: 1 }),
  layout: Type.Union([Type.Literal('string'), Type.Literal('hash'), Type.Literal('bucketed')]),
  buckets: Type.Integer({ minimum: 1 }),
  sweepInterval: Type.Number({ exclusiveMinimum: 0, unit: 'seconds' }),
  compress: Type.Union([
    Type.Literal(false),
    Type.Object({
      threshold: Type.Optional(Type.Integer({ minimum: 0 })),
      algorithm: Type.Optional(Type.Union([Type.Literal('deflate'), Type.Literal('gzip'), Type.Literal('brotli')]))
    }, { additionalProperties: false })
  ]),
  replicas: Type.Object({ count: Type.Integer({ minimum: 1 }), timeout: Milliseconds }, { additionalProperties: false }),
  cache: Type.Union([
    Type.Boolean(),
    Type.Object({
      maxEntries: Type.Optional(Type.Integer({ minimum: 1 })),
      touchAfter: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_TIMEOUT, unit: 'seconds' }))
    }, { additionalProperties: false })
  ]),
  cookieName: CookieName,
  cookie: Type.Object({
    path: Type.Optional(Type.String({ pattern: '^/[^;\\s]*$', description: "a path starting with / without ';' or whitespace" })),
    domain: Type.Optional(Type.String({ pattern: '^[^;\\s]+$', description: "a domain without ';' or whitespace" })),
    httpOnly: Type.Optional(Type.Boolean()),
    sameSite: Type.Optional(Type.Union([Type.Literal('lax'), Type.Literal('strict'), Type.Literal('none'), Type.Literal(false)])),
    secure: Type.Optional(Type.Union([Type.Boolean(), Type.Literal('auto')])),
    // Max-Age=0 would make browsers drop the cookie at once; they cap it at 400 days
    maxAge: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_COOKIE_AGE, unit: 'seconds' })),
    partitioned: Type.Optional(Type.Boolean())
  }, { additionalProperties: false }),
  cookieOnException: Type.Boolean(),
  shouldSetCookie: Fn,
  decorator: Type.String({ pattern: '^[A-Za-z_$][A-Za-z0-9_$]*$', description: 'a JavaScript identifier (letters, digits, _ and $, not starting with a digit)' }),
  // the old app's secrets as they were: our minimum length does not apply to them
  migrateFrom: Type.Object({
    cookieName: CookieName,
    secret: Type.Union([Type.String({ minLength: 1 }), Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })]),
    prefix: Type.Optional(Type.String()),
    cookiePrefix: Type.Optional(Type.String())
  }, { additionalProperties: false })
}

/** The whole options schema, for documentation and tooling. */
export const optionsSchema = Type.Object(
  Object.fromEntries(Object.entries(optionSchemas).map(([key, schema]) => [key, key === 'secret' ? schema : Type.Optional(schema)])),
  { additionalProperties: false }
)

const CONNECTION_SOURCES = ['client', 'cluster', 'sentinel', 'url', 'socketPath', 'memcached'] as const
const BUCKETED_ONLY = ['buckets', 'sweepInterval'] as const

/** Checks `options` against the schema and fills in defaults; throws FST_RS_INVALID_OPTIONS naming every bad path. */
export function resolveOptions (options: RedisSessionOptions): ResolvedOptions {
  const problems = findProblems(options as unknown as Record<string, unknown>)
  if (problems.length > 0) throw new FST_RS_INVALID_OPTIONS(problems.join('; '))

  const cookie: CookieAttributes = {
    path: '/',
    httpOnly: true,
    sameSite: 'lax',
    secure: 'auto',
    partitioned: false,
    ...options.cookie
  }
  const timeout = options.timeout === undefined ? 1200 : options.timeout ?? 0
  return {
    secrets: typeof options.secret === 'string' ? [options.secret] : options.secret,
    connection: {
      url: options.url,
      host: options.host,
      port: options.port,
      db: options.db,
      username: options.username,
      password: options.password,
      socketPath: options.socketPath,
      tls: options.tls,
      tlsSkipVerify: options.tlsSkipVerify,
      sentinel: options.sentinel,
      cluster: options.cluster,
      client: options.client,
      memcached: options.memcached,
      connectTimeout: options.connectTimeout ?? 5000,
      commandTimeout: options.commandTimeout ?? 2000
    },
    prefix: options.prefix ?? 'sess:',
    timeout,
    absoluteTimeout: options.absoluteTimeout ?? 0,
    redisTtl: options.redisTtl ?? true,
    detectChanges: options.detectChanges ?? true,
    encode: options.encode ?? JSON.stringify,
    decode: options.decode ?? JSON.parse,
    deserializationFailsNew: options.deserializationFailsNew ?? false,
    maxSize: options.maxSize ?? 1024 * 1024,
    layout: options.layout ?? 'string',
    buckets: options.buckets ?? 65536,
    sweepInterval: options.sweepInterval,
    compress: options.compress === undefined || options.compress === false
      ? undefined
      : { threshold: options.compress.threshold ?? 400, algorithm: options.compress.algorithm ?? 'deflate' },
    replicas: options.replicas,
    cache: cacheSettings(options.cache, timeout),
    cookieName: options.cookieName ?? 'session',
    cookie,
    cookieOnException: options.cookieOnException ?? true,
    shouldSetCookie: options.shouldSetCookie,
    decorator: options.decorator ?? 'session',
    migrateFrom: options.migrateFrom === undefined
      ? undefined
      : {
          cookieName: options.migrateFrom.cookieName,
          secrets: typeof options.migrateFrom.secret === 'string' ? [options.migrateFrom.secret] : options.migrateFrom.secret,
          prefix: options.migrateFrom.prefix ?? 'sess:',
          cookiePrefix: options.migrateFrom.cookiePrefix ?? ''
        }
  }
}

function cacheSettings (cache: RedisSessionOptions['cache'], timeout: number): Required<CacheOptions> | undefined {
  if (cache === undefined || cache === false) return undefined
  const { maxEntries = 10000, touchAfter = Math.floor(timeout / 10) } = cache === true ? {} : cache
  return { maxEntries, touchAfter }
}

function findProblems (options: Record<string, unknown>): string[] {
  if (typeof options !== 'object' || options === null) return ['options must be an object']
  const problems = schemaProblems(optionsSchema, options)
  const sources = CONNECTION_SOURCES.filter((key) => options[key] !== undefined)
  if (sources.length > 1) problems.push(sources.map((key) => '/' + key).join(', ') + ` are exclusive: give one way to reach ${sources.includes('memcached') ? 'the session store' : 'Redis'}`)
  if (options.memcached !== undefined) problems.push(...memcachedProblems(options))
  for (const key of BUCKETED_ONLY) {
    if (options[key] !== undefined && options.layout !== 'bucketed') problems.push(`/${key} only applies to layout 'bucketed': set /layout to 'bucketed' or remove /${key}`)
  }
  if (options.cache !== undefined && options.cache !== false) problems.push(...cacheProblems(options))
  const replicas = options.replicas as Partial<{ timeout: unknown }> | undefined
  const commandTimeout = typeof options.commandTimeout === 'number' ? options.commandTimeout : 2000
  if (typeof replicas?.timeout === 'number' && replicas.timeout >= commandTimeout) {
    problems.push(`/replicas/timeout must be less than /commandTimeout (${commandTimeout} ms): a save's WAIT would outlast the request waiting for it, and keep blocking its connection. Lower /replicas/timeout or raise /commandTimeout`)
  }
  const cookie = options.cookie as Partial<CookieAttributes> | undefined
  if (cookie?.sameSite === 'none' && cookie.secure === false) {
    problems.push("/cookie/secure must not be false when /cookie/sameSite is 'none' (browsers refuse SameSite=None cookies without Secure): use secure: 'auto' or true")
  }
  if (typeof options.cookieName === 'string') problems.push(...prefixProblems(options.cookieName, cookie ?? {}))
  const migrateFrom = options.migrateFrom as Partial<MigrateFromOptions> | undefined
  if (migrateFrom?.cookieName !== undefined && migrateFrom.cookieName === (options.cookieName ?? 'session')) {
    problems.push(`/migrateFrom/cookieName must differ from /cookieName ('${migrateFrom.cookieName}'): the old cookie is expired once taken over, so give this plugin's cookie another name`)
  }
  return problems
}

// why each option does not apply to Memcached
const REDIS_ONLY: Record<string, string> = {
  host: 'a Redis connection option',
  port: 'a Redis connection option',
  db: 'a Redis connection option',
  username: 'a Redis connection option (give /memcached/username)',
  password: 'a Redis connection option (give /memcached/password)',
  tls: 'a Redis connection option',
  tlsSkipVerify: 'a Redis connection option',
  replicas: 'Redis replication (Memcached servers do not replicate)',
  cache: 'kept true by Redis CLIENT TRACKING invalidations',
  migrateFrom: 'for sessions connect-redis kept in Redis'
}
// Memcached keys end at 250 bytes; an id takes 43 of them
const MAX_MEMCACHED_PREFIX = 250 - 43

/** What Memcached cannot do, and how it is reached. */
function memcachedProblems (options: Record<string, unknown>): string[] {
  const problems: string[] = []
  const memcached = options.memcached as MemcachedOptions
  if ((memcached.servers === undefined) === (memcached.client === undefined)) {
    problems.push('/memcached needs exactly one of /memcached/servers and /memcached/client')
  }
  for (const [key, why] of Object.entries(REDIS_ONLY)) {
    if (options[key] !== undefined) problems.push(`/${key} is ${why}, not for /memcached: remove /${key}`)
  }
  if (options.layout !== undefined && options.layout !== 'string') {
    problems.push("/layout must be 'string' with /memcached (each session is one Memcached item): remove /layout")
  }
  if (typeof options.prefix === 'string' && Buffer.byteLength(options.prefix) > MAX_MEMCACHED_PREFIX) {
    problems.push(`/prefix must be at most ${MAX_MEMCACHED_PREFIX} bytes with /memcached (Memcached keys end at 250 bytes and a session id takes 43): shorten /prefix`)
  }
  return problems
}

/** What the local cache does not support yet. */
function cacheProblems (options: Record<string, unknown>): string[] {
  const problems: string[] = []
  if (options.layout !== undefined && options.layout !== 'string') {
    problems.push('/cache only supports layout \'string\' for now: remove /cache or set /layout to \'string\'')
  }
  if (options.cluster !== undefined || (options.client as Cluster | undefined)?.isCluster === true) {
    problems.push('/cache does not support Redis Cluster yet: remove /cache, or use a standalone or Sentinel-managed Redis')
  }
  // neither is built into the cache's reads and slides yet
  for (const key of ['replicas', 'absoluteTimeout']) {
    if (options[key] !== undefined) problems.push(`/cache cannot be combined with /${key} yet: remove one of them`)
  }
  const touchAfter = (options.cache as CacheOptions).touchAfter
  const timeout = options.timeout === undefined ? 1200 : options.timeout
  if (typeof touchAfter === 'number' && typeof timeout === 'number' && timeout > 0 && touchAfter >= timeout) {
    problems.push(`/cache/touchAfter must be less than /timeout (${timeout}): a session served from the cache would expire in Redis between two slides`)
  }
  return problems
}

/** What browsers enforce on a cookie named `__Secure-…` or `__Host-…`: they drop it otherwise. */
function prefixProblems (cookieName: string, cookie: Partial<CookieAttributes>): string[] {
  const prefix = securePrefixOf(cookieName)
  if (prefix === undefined) return []
  const because = `when /cookieName starts with ${prefix} (browsers refuse such a cookie otherwise)`
  const problems: string[] = []
  if (cookie.secure === false) {
    problems.push(`/cookie/secure must not be false ${because}: use secure: true, or 'auto' if the app also answers plain http (a new session is then not stored on http)`)
  }
  if (prefix.toLowerCase() === '__host-') {
    if (cookie.path !== undefined && cookie.path !== '/') problems.push(`/cookie/path must be '/' ${because}: remove /cookie/path`)
    if (cookie.domain !== undefined) problems.push(`/cookie/domain must be absent ${because}: remove /cookie/domain (the cookie then goes to this host only), or use a __Secure- name`)
  }
  return problems
}
