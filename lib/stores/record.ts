import type { Codec, SessionRecordData, Stored } from '../codec.js'
import { FST_RS_DECODE_FAILED } from '../errors.js'
import { decodeInfo } from '../session-info.js'
import type { LoadedSession, SaveRequest, SessionDetails, StoredSession } from './store.js'

/** The longest own timeout a session can have, in seconds: a century, more than any session needs, and an EXPIRE Redis takes. */
export const MAX_TIMEOUT = 100 * 365 * 24 * 3600

/** How long sessions live. */
export interface Expiry {
  /** seconds; 0 = never expires */
  timeout: number
  /** seconds after createdAt a session ends, however active; 0 = off */
  absoluteTimeout: number
  /** false = LRU mode: Redis enforces no expiry, the header carries it */
  redisTtl: boolean
}

export interface Header {
  header: string
  /** seconds the session lives from now: its own timeout or the configured one, cut by absoluteTimeout (then with ms); 0 = never */
  timeout: number
  /** LRU mode: ms since epoch after which the record counts as expired; undefined = never */
  expiresAt: number | undefined
}

/**
 * `<own timeout>:<createdAt>:<expiresAt>[:<owner>[:<info>]]`, what every layout keeps beside the
 * data; `expiresAt` only in LRU mode, where no TTL enforces the timeout; the owner and the info
 * (`setOwner`) base64url-encoded.
 */
export function formatHeader (session: StoredSession, expiry: Expiry): Header {
  const timeout = secondsToLive(session.timeout ?? expiry.timeout, session.createdAt, expiry.absoluteTimeout)
  const expiresAt = !expiry.redisTtl && timeout > 0 ? Math.floor(Date.now() + timeout * 1000) : undefined
  const owner = session.owner === undefined ? '' : ':' + Buffer.from(session.owner).toString('base64url') + (session.info === undefined ? '' : ':' + session.info)
  return { header: `${session.timeout ?? ''}:${session.createdAt}:${expiresAt ?? ''}${owner}`, timeout, expiresAt }
}

/**
 * Seconds a session lives from now: `timeout` (0 = never expires), cut where its absolute
 * lifetime ends; a cut one has a fraction (ms), at least 1 ms: Redis takes no expiry of 0.
 */
export function secondsToLive (timeout: number, createdAt: number, absoluteTimeout: number): number {
  if (absoluteTimeout === 0) return timeout
  const left = Math.max(1, createdAt + absoluteTimeout * 1000 - Date.now()) / 1000
  return timeout === 0 ? left : Math.min(timeout, left)
}

/**
 * Seconds a read slides the expiry to in its own round trip (GETEX, GAT): the configured timeout.
 * Undefined when it must slide nothing: LRU mode, no timeout, or an absolute end the slide could
 * pass (`expiryAfterRead` sets the cut expiry instead).
 */
export function readSlide ({ redisTtl, timeout, absoluteTimeout }: Expiry): number | undefined {
  return redisTtl && timeout > 0 && absoluteTimeout === 0 ? timeout : undefined
}

/**
 * The expiry a read sets besides its own slide (which sets the configured `timeout`), in seconds
 * from now (0 = never expires), or undefined when that slide was right: a session with its own
 * timeout lives by it, and with `absoluteTimeout` the read slid nothing and the expiry is cut at its end.
 */
export function expiryAfterRead ({ timeout: ownTimeout, createdAt }: StoredSession, { redisTtl, timeout, absoluteTimeout }: Expiry): number | undefined {
  if (!redisTtl) return undefined
  if (absoluteTimeout > 0) {
    // without an idle timeout the save already set the expiry to the end of the lifetime
    return (ownTimeout ?? timeout) === 0 ? undefined : secondsToLive(ownTimeout ?? timeout, createdAt, absoluteTimeout)
  }
  return ownTimeout === undefined || ownTimeout === timeout ? undefined : ownTimeout
}

// bounded digits: a timeout has at most 10 (MAX_TIMEOUT), ms timestamps at most 15, so each is a
// safe integer that formats back as it was read
const HEADER = /^(\d{0,10}):(\d{1,15}):(\d{0,15})(?::([A-Za-z0-9_-]+)(?::([A-Za-z0-9_-]+))?)?$/

/**
 * The session a record holds: its header's fields and its data. Built as one literal: V8 spreads
 * a parsed header several times slower than it decodes a small session.
 */
export function loadedSession (header: string, data: SessionRecordData, snapshot: unknown, stored?: Stored | readonly Stored[]): LoadedSession {
  const fields = HEADER.exec(header)
  if (fields === null) throw new FST_RS_DECODE_FAILED('the record has no valid header')
  const timeout = fields[1] === '' ? undefined : Number(fields[1])
  if (timeout !== undefined && timeout > MAX_TIMEOUT) throw new FST_RS_DECODE_FAILED('the record\'s own timeout is beyond a century')
  return {
    timeout,
    createdAt: Number(fields[2]),
    expiresAt: fields[3] === '' ? undefined : Number(fields[3]),
    owner: fields[4] === undefined ? undefined : Buffer.from(fields[4], 'base64url').toString(),
    info: fields[5],
    data,
    snapshot,
    stored
  }
}

/**
 * What `listByOwner` tells of the session whose header is `header`; `expiresAt` is when Redis ends
 * it (its TTL, or its score in a bucket's index), undefined when Redis keeps no end (LRU mode, or
 * it never expires). Null once the session has expired.
 */
export function sessionDetails (id: string, header: string, expiresAt: number | undefined, expiry: Expiry): SessionDetails | null {
  const session = loadedSession(header, {}, undefined)
  const end = expiresAt ?? session.expiresAt ?? null
  if (end !== null && end <= Date.now()) return null
  // every read slides the expiry to a whole timeout from then; without one, it tells nothing
  const timeout = session.timeout ?? expiry.timeout
  return {
    id,
    createdAt: session.createdAt,
    lastSeenAt: end === null || timeout === 0 ? null : Math.max(session.createdAt, end - timeout * 1000),
    expiresAt: end,
    info: session.info === undefined ? null : decodeInfo(session.info)
  }
}

/** A record's header: what comes before the first `|` (string and bucketed layouts). */
export function headerOf (stored: Stored): string {
  const bar = stored.indexOf('|')
  if (bar === -1) throw new FST_RS_DECODE_FAILED('the record has no valid header')
  return typeof stored === 'string' ? stored.slice(0, bar) : stored.toString('latin1', 0, bar)
}

export interface EncodedRecord {
  value: Stored
  /** seconds the session lives from now; 0 = never */
  timeout: number
  /** the encoded data, before compression: what a loaded session's snapshot is */
  payload: string
  /** as in the header */
  expiresAt: number | undefined
}

/**
 * A whole session as one value (string and bucketed layouts): the header, `|`, then the encoded
 * data, compressed when that is on.
 */
export function encodeRecord (codec: Codec, expiry: Expiry, request: SaveRequest): EncodedRecord {
  const payload = codec.encode(request.session.data)
  codec.checkEncodedSize(payload)
  const { header, timeout, expiresAt } = formatHeader(request.session, expiry)
  const packed = codec.pack(payload)
  const value = typeof packed === 'string' ? `${header}|${packed}` : Buffer.concat([Buffer.from(header + '|'), packed])
  codec.checkSize(value)
  request.written = value
  return { value, timeout, payload, expiresAt }
}

/** True when `data` encodes to the snapshot `decodeRecord` kept: the encoded data. */
export function holdsRecord (codec: Codec, snapshot: unknown, data: SessionRecordData): boolean {
  return codec.encode(data) === snapshot
}

/** The session in a value `encodeRecord` made; its snapshot is the encoded data. */
export function decodeRecord (codec: Codec, stored: Stored): LoadedSession {
  const header = headerOf(stored)
  const bar = header.length
  const payload = codec.unpack(typeof stored === 'string' ? stored.slice(bar + 1) : stored.subarray(bar + 1))
  return loadedSession(header, codec.decode(payload), payload, stored)
}
