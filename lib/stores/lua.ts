// Lua pieces the layouts' scripts share.
import { MAX_TIMEOUT } from './record.js'

/**
 * Defines `timeoutOf(header, fallback)`: the seconds a session lives, its own timeout leading its
 * header (`<own timeout>:<createdAt>:<expiresAt>`) or else the configured `fallback`. An own
 * timeout beyond MAX_TIMEOUT counts as none, as with any header loadedSession refuses: the record
 * then fails to decode, instead of the script failing on an EXPIRE Redis will not take.
 */
export const TIMEOUT_OF = `local function timeoutOf(header, fallback)
  local own = tonumber(string.match(header, '^(%d+):'))
  if own and own <= ${MAX_TIMEOUT} then return own end
  return tonumber(fallback)
end`

/**
 * Defines `lifetimeCut(header, ttl, absolute, now)`: `ttl` (seconds, 0 = never) cut where the
 * session's absolute lifetime ends, `absolute` seconds after the createdAt in its header (now and
 * createdAt in ms), as secondsToLive does; `absolute` '0' leaves it as it is.
 */
export const LIFETIME_CUT = `local function lifetimeCut(header, ttl, absolute, now)
  absolute = tonumber(absolute)
  local createdAt = tonumber(string.match(header, '^%d*:(%d+):'))
  if absolute == 0 or not createdAt then return ttl end
  local left = math.max(1, createdAt + absolute * 1000 - now) / 1000
  if ttl == 0 or left < ttl then return left end
  return ttl
end`

/**
 * Defines `expireIn(key, ttl)`: EXPIRE for whole seconds, PEXPIRE for a ttl absoluteTimeout cut
 * to the ms (only then does the ACL user need PEXPIRE).
 */
export const EXPIRE_IN = `local function expireIn(key, ttl)
  if ttl == math.floor(ttl) then redis.call('EXPIRE', key, ttl) else redis.call('PEXPIRE', key, math.floor(ttl * 1000)) end
end`

/**
 * Stops the script with 0 unless the record's existence is what the save expects (`flag` '1':
 * it must still exist, so a destroy or regenerate wins; '0': it must not exist yet).
 */
export function requireExistence (exists: string, flag: string): string {
  return `if (${exists}) ~= (${flag} == '1') then return 0 end`
}

/** Defines `now`: ms since epoch by the Redis clock, so every app server and the CLI agree on what has expired. */
export const NOW = `local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)`
