import { createHmac, timingSafeEqual } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Cluster, Redis } from 'ioredis'
import type { SessionRecordData } from './codec.js'
import { readCookie, serializeCookie } from './cookie.js'
import { RedisSession, type DestroyRecord } from './session.js'
import type { Guard } from './stores/index.js'
import { unavailable } from './stores/redis-calls.js'

/**
 * `migrateFrom`: the session library being replaced (@fastify/session or express-session, with
 * connect-redis), as the old app had it configured.
 * @example
 * { cookieName: 'connect.sid', secret: ['keyboard cat', 'an older one'], cookiePrefix: 's:' }
 */
export interface MigrateFromOptions {
  /** The old cookie's name: `sessionId` for @fastify/session, `connect.sid` for express-session. */
  cookieName: string
  /** The old signing secret, or several (any of them verifies); no minimum length applies. */
  secret: string | string[]
  /** The old store's key prefix; default `'sess:'` (connect-redis's). */
  prefix?: string
  /** What precedes the signed id in the old cookie: default `''` (@fastify/session); `'s:'` for express-session. */
  cookiePrefix?: string
}

export interface ResolvedMigration {
  cookieName: string
  secrets: string[]
  prefix: string
  cookiePrefix: string
}

/** What an expiring Set-Cookie must match for the browser to drop the old cookie. */
interface CookieScope {
  path: string
  domain: string | undefined
}

/** The old record as read: its data when it is a live connect-redis session, and its cookie's scope. */
interface OldSession {
  data: SessionRecordData | undefined
  scope: CookieScope
}

/** An old cookie that goes on the response, once the session taking it over (if any) is saved. */
interface Retiring {
  scope: CookieScope
  successor: RedisSession | undefined
}

const DEFAULT_SCOPE: CookieScope = { path: '/', domain: undefined }
const NOTHING: OldSession = { data: undefined, scope: DEFAULT_SCOPE }
// what the cookie option accepts: a header value can carry nothing else
const PATH = /^\/[^;\s]*$/
const DOMAIN = /^[^;\s]+$/

/**
 * Takes over the sessions of @fastify/session or express-session kept by connect-redis. A request
 * without a cookie of ours whose old cookie verifies costs one GET of the old record; a session
 * made from it is stored on that response (the old record deleted in the same round trip) and
 * only then is the old cookie expired, so a browser keeps its old session until it holds the new one.
 * @example
 * const takeover = new SessionTakeover(opts.migrateFrom, client, guard)
 * const taking = takeover.begin(request, destroyRecord)   // onRequest, no cookie of ours verified
 * takeover.settle(request, reply, cookieAllowed)          // onSend, after the save
 */
export class SessionTakeover {
  readonly #options: ResolvedMigration
  readonly #client: Redis | Cluster
  readonly #guard: Guard
  readonly #retiring = new WeakMap<FastifyRequest, Retiring>()
  #warned = false

  constructor (options: ResolvedMigration, client: Redis | Cluster, guard: Guard) {
    this.#options = options
    this.#client = client
    this.#guard = guard
  }

  /**
   * For a request without a valid cookie of ours: the session taken over from its old cookie's
   * record, or a fresh one when there is nothing to take over; undefined when the request has no
   * validly signed old cookie (and then costs no Redis command).
   */
  begin (request: FastifyRequest, destroyRecord: DestroyRecord): Promise<RedisSession> | undefined {
    const id = this.#verifiedId(request)
    if (id === undefined) return undefined
    const key = this.#options.prefix + id
    return this.#guard(async () => await this.#read(key)).then(({ data, scope }) => {
      const successor = data === undefined
        ? undefined
        : RedisSession.adopting(destroyRecord, data, { key, destroy: async () => { await this.#guard(async () => await this.#client.del(key)) } })
      this.#retiring.set(request, { scope, successor })
      return successor ?? new RedisSession(destroyRecord)
    })
  }

  /** For a request with a valid cookie of ours: a validly signed old cookie beside it is expired. */
  beside (request: FastifyRequest): void {
    if (this.#verifiedId(request) !== undefined) this.#retiring.set(request, { scope: DEFAULT_SCOPE, successor: undefined })
  }

  /** Once the session is saved (or not): expires the old cookie, unless the session taking it over was not stored. */
  settle (request: FastifyRequest, reply: FastifyReply, cookieAllowed: boolean): void {
    const retiring = this.#retiring.get(request)
    if (retiring === undefined || !cookieAllowed) return
    const { scope, successor } = retiring
    if (successor !== undefined && RedisSession.internals(successor).adopted !== undefined) return
    const attributes = { ...scope, httpOnly: true, sameSite: false, secure: false, partitioned: false } as const
    reply.header('set-cookie', serializeCookie(this.#options.cookieName, '', attributes, request.protocol === 'https', true))
  }

  /** The id in the request's old cookie when one of the old secrets signed it. */
  #verifiedId (request: FastifyRequest): string | undefined {
    const header = request.headers.cookie
    const raw = header === undefined ? undefined : readCookie(header, this.#options.cookieName)
    if (raw === undefined) return undefined
    const id = verify(raw, this.#options)
    if (id === undefined && !this.#warned) {
      this.#warned = true
      request.log.warn(`a ${this.#options.cookieName} cookie is malformed or signed by none of migrateFrom.secret, so it is not taken over. ` +
        'If no old session is ever taken over, check migrateFrom.secret and migrateFrom.cookiePrefix (logged once)')
    }
    return id
  }

  async #read (key: string): Promise<OldSession> {
    // a key of another type where the old record would be is no connect-redis session either
    const text = await this.#client.get(key).catch((err: Error) => err.message.includes('WRONGTYPE') ? null : unavailable(err))
    return text === null ? NOTHING : parseOldRecord(text)
  }
}

/** The id of a cookie value signed as cookie-signature does (express-session, @fastify/cookie's signer), URL-encoded as they send it. */
function verify (raw: string, { secrets, cookiePrefix }: ResolvedMigration): string | undefined {
  let value: string
  try {
    value = decodeURIComponent(raw)
  } catch {
    return undefined
  }
  const dot = value.lastIndexOf('.')
  if (!value.startsWith(cookiePrefix) || dot <= cookiePrefix.length) return undefined
  const id = value.slice(cookiePrefix.length, dot)
  const signature = Buffer.from(value.slice(dot + 1))
  for (const secret of secrets) {
    const expected = Buffer.from(createHmac('sha256', secret).update(id).digest('base64').replace(/=+$/, ''))
    if (signature.length === expected.length && timingSafeEqual(signature, expected)) return id
  }
  return undefined
}

/** A connect-redis record is a JSON object with a `cookie` member; the rest is the session's data. */
function parseOldRecord (text: string): OldSession {
  let record: unknown
  try {
    record = JSON.parse(text)
  } catch {
    return NOTHING
  }
  if (!isObject(record) || !Object.hasOwn(record, 'cookie') || !isObject(record.cookie)) return NOTHING
  const { cookie, ...data } = record
  const scope: CookieScope = {
    path: typeof cookie.path === 'string' && PATH.test(cookie.path) ? cookie.path : '/',
    domain: typeof cookie.domain === 'string' && DOMAIN.test(cookie.domain) ? cookie.domain : undefined
  }
  // past its cookie's expiry the old library would not use it either (its TTL may be off)
  const expired = typeof cookie.expires === 'string' && Date.parse(cookie.expires) <= Date.now()
  return { data: expired ? undefined : data, scope }
}

function isObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
