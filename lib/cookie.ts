import { createHmac, timingSafeEqual } from 'node:crypto'
import { isValidId } from './id.js'

export interface CookieAttributes {
  path: string
  domain?: string
  httpOnly: boolean
  sameSite: 'lax' | 'strict' | 'none' | false
  secure: boolean | 'auto'
  /** seconds */
  maxAge?: number
  partitioned: boolean
}

export interface VerifiedCookie {
  id: string
  /** the signed value as the request sent it */
  value: string
  /** signed with a secret other than the first: re-sign it */
  stale: boolean
}

/** Browsers cap a cookie's lifetime at 400 days (RFC 6265bis), in seconds. */
export const MAX_COOKIE_AGE = 400 * 24 * 3600

/**
 * The `__Host-` or `__Secure-` prefix `cookieName` starts with, as written (browsers match it in
 * any case), or undefined. Browsers refuse such a cookie without Secure, and a `__Host-` one also
 * with a Domain or a Path other than `/`.
 * @example
 * securePrefixOf('__Host-sid') // '__Host-'
 */
export function securePrefixOf (cookieName: string): string | undefined {
  return /^__(?:secure|host)-/i.exec(cookieName)?.[0]
}

const SIGNATURE_LENGTH = 43
/**
 * Verified cookie values kept per generation (two are kept), so a returning client costs no HMAC
 * (each one allocates and feeds GC).
 */
const GENERATION = 5_000

/** Signs ids with the first secret and verifies with all of them, in constant time. */
export class CookieSigner {
  readonly #secrets: string[]
  /** values verified lately, and those of the generation before; a Map evicting its oldest entry one by one gets slow */
  #recent = new Map<string, VerifiedCookie>()
  #older = new Map<string, VerifiedCookie>()

  constructor (secrets: string[]) {
    this.#secrets = secrets
  }

  sign (id: string): string {
    const value = id + '.' + hmac(this.#secrets[0], id)
    this.#remember(value, { id, value, stale: false })
    return value
  }

  verify (value: string): VerifiedCookie | null {
    const recent = this.#recent.get(value)
    if (recent !== undefined) return recent
    const verified = this.#older.get(value) ?? this.#check(value)
    if (verified !== null) this.#remember(value, verified)
    return verified
  }

  #remember (value: string, verified: VerifiedCookie): void {
    if (this.#recent.size >= GENERATION) {
      this.#older = this.#recent
      this.#recent = new Map()
    }
    this.#recent.set(value, verified)
  }

  #check (value: string): VerifiedCookie | null {
    const dot = value.length - SIGNATURE_LENGTH - 1
    if (dot < 0 || value.charCodeAt(dot) !== 46 /* . */) return null
    const id = value.slice(0, dot)
    if (!isValidId(id)) return null
    const signature = Buffer.from(value.slice(dot + 1))
    for (let i = 0; i < this.#secrets.length; i++) {
      const expected = Buffer.from(hmac(this.#secrets[i], id))
      // lengths are equal whenever the value is well formed; a mismatch just fails
      if (signature.length === expected.length && timingSafeEqual(signature, expected)) {
        return { id, value, stale: i > 0 }
      }
    }
    return null
  }
}

function hmac (secret: string, id: string): string {
  return createHmac('sha256', secret).update(id).digest('base64url')
}

/** The first value of cookie `name` in a Cookie header, or undefined. */
export function readCookie (header: string, name: string): string | undefined {
  let start = 0
  while (start < header.length) {
    let end = header.indexOf(';', start)
    if (end === -1) end = header.length
    const eq = header.indexOf('=', start)
    if (eq !== -1 && eq < end && header.slice(start, eq).trim() === name) {
      return header.slice(eq + 1, end).trim()
    }
    start = end + 1
  }
  return undefined
}

/** A Set-Cookie header value; `value` is always a signed id, which needs no escaping. */
export function serializeCookie (name: string, value: string, attributes: CookieAttributes, secure: boolean, expire = false): string {
  let cookie = name + '=' + value + '; Path=' + attributes.path
  if (attributes.domain !== undefined) cookie += '; Domain=' + attributes.domain
  if (expire) {
    cookie += '; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT'
  } else if (attributes.maxAge !== undefined) {
    cookie += '; Max-Age=' + attributes.maxAge
  }
  if (attributes.httpOnly) cookie += '; HttpOnly'
  if (secure) cookie += '; Secure'
  if (attributes.sameSite !== false) cookie += '; SameSite=' + SAME_SITE[attributes.sameSite]
  if (attributes.partitioned) cookie += '; Partitioned'
  return cookie
}

const SAME_SITE = { lax: 'Lax', strict: 'Strict', none: 'None' } as const
