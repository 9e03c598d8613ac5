import { FST_RS_DECODE_FAILED, FST_RS_INVALID_INFO } from './errors.js'

/** The most bytes `setOwner`'s info may take as JSON: enough for a user agent and an address, small beside any session. */
export const MAX_INFO_BYTES = 1024

/**
 * App-given facts about the device a session is used from (`setOwner(owner, info)`), such as
 * `{ userAgent, ip }`: a JSON object of at most 1 KiB. Type its fields by declaration merging.
 * @example
 * declare module 'fastify-redis-sessions' {
 *   interface SessionInfo { userAgent?: string, ip?: string }
 * }
 */
export interface SessionInfo {
  [key: string]: unknown
}

/** `info` as it is stored in a record's header: base64url of its JSON, so no separator of the header can occur in it. */
export function encodeInfo (info: SessionInfo): string {
  if (typeof info !== 'object' || info === null || Array.isArray(info)) {
    throw new FST_RS_INVALID_INFO('setOwner(owner, info) takes a plain object as info, such as { userAgent, ip }')
  }
  const json = Buffer.from(JSON.stringify(info))
  if (json.length > MAX_INFO_BYTES) {
    throw new FST_RS_INVALID_INFO(`setOwner's info is ${json.length} bytes as JSON, more than ${MAX_INFO_BYTES}: keep a few short fields (cut a long user agent, e.g. userAgent.slice(0, 200))`)
  }
  return json.toString('base64url')
}

/** The info `encodeInfo` stored. */
export function decodeInfo (stored: string): SessionInfo {
  let info: unknown
  try {
    info = JSON.parse(Buffer.from(stored, 'base64url').toString())
  } catch (err) {
    throw new FST_RS_DECODE_FAILED('the record\'s info is no JSON', { cause: err })
  }
  if (typeof info !== 'object' || info === null || Array.isArray(info)) throw new FST_RS_DECODE_FAILED('the record\'s info is no JSON object')
  return info as SessionInfo
}
