import { resolveOptions } from '../dist/options.js'

/** What each route measures; `cookie: true` sends a valid cookie of a stored session. */
export const ROUTES = [
  { name: 'no-cookie', path: '/untouched', cookie: false, about: 'no cookie, session untouched' },
  { name: 'read', path: '/read', cookie: true, about: 'valid cookie, session (a counter and a nested user object) read, not changed' },
  { name: 'write', path: '/write', cookie: true, about: 'valid cookie, the counter incremented and the user set' },
  { name: 'new', path: '/write', cookie: false, about: 'no cookie, counter and user set: a new session stored' }
]

const LAYOUT_CANDIDATES = ['string', 'hash', 'bucketed']

/** The layouts the built plugin's options schema accepts today. */
export function supportedLayouts () {
  return LAYOUT_CANDIDATES.filter((layout) => {
    try {
      resolveOptions({ secret: 'x'.repeat(32), layout })
      return true
    } catch {
      return false
    }
  })
}

export const BARE = 'bare'
export const FLOOR = 'floor'
export const ANCHORS = ['@fastify/session', '@mgcrea/fastify-session']

export const FLOOR_VARIANT = { name: FLOOR, server: 'floor', sessions: true }

/** Every variant, each served by `bench/servers/<server>.js` with `settings`. */
export function allVariants () {
  return [
    { name: BARE, server: 'bare', sessions: false },
    FLOOR_VARIANT,
    ...supportedLayouts().map(oursIn),
    OURS_CACHED,
    OURS_TRACED,
    MEMCACHED_FLOOR,
    OURS_MEMCACHED,
    { name: ANCHORS[0], server: 'fastify-session', sessions: true },
    { name: ANCHORS[1], server: 'mgcrea', sessions: true }
  ]
}

/** The string layout with the local cache: reads of a cached session send nothing to Redis. */
export const OURS_CACHED = { name: 'ours (string, cache)', server: 'ours', sessions: true, ours: true, settings: { layout: 'string', cache: true } }

/** The string layout with a subscriber on every tracing channel: the cost of being watched (`ours (string)` is the same without). */
export const OURS_TRACED = { name: 'ours (string, traced)', server: 'ours', sessions: true, ours: true, settings: { layout: 'string', traced: true } }
/** Sessions in Memcached (`memcached: true`: the harness gives them its memcached, not Redis), and the least any plugin there can cost. */
export const OURS_MEMCACHED = { name: 'ours (memcached)', server: 'ours', sessions: true, ours: true, memcached: true }
export const MEMCACHED_FLOOR = { name: 'floor (memcached)', server: 'floor-memcached', sessions: true, memcached: true }

export function oursIn (layout) {
  return { name: `ours (${layout})`, server: 'ours', sessions: true, ours: true, settings: { layout } }
}
