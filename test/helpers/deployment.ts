import type { FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import { sessionCookie } from './app.js'

/**
 * The README's recommended ACL commands: what every layout, the owner index, `replicas` and
 * ioredis' handshake (INFO) need.
 */
export const ACL_COMMANDS = '+get +set +del +exists +expire +persist +hget +hgetall +hset +hdel +hexists ' +
  '+zadd +zrem +zscore +zrangebyscore +sadd +srem +smembers +time +eval +evalsha +wait +ping +info'
/** What ioredis' Cluster client adds: the slot map, the ready check, its named slot-map connection. */
export const CLUSTER_ACL_COMMANDS = '+cluster|slots +cluster|info +client|setname'

/** The README's recommended ACL line for `user`, on keys under `prefix`. */
export function aclLine (user: string, prefix: string, extra = ''): string {
  return `user ${user} on >${user}-secret resetkeys ~${prefix}* resetchannels -@all ${ACL_COMMANDS}${extra}`
}

/**
 * Routes for deployment tests: each user logs in once, then every request says whose session it
 * got, so a response carrying another user's data cannot go unnoticed.
 */
export function userRoutes (app: FastifyInstance): void {
  app.get('/login/:user', async (request) => {
    await request.session.regenerate()
    request.session.set('user', (request.params as { user: string }).user)
    return {}
  })
  app.get('/whoami', async (request) => ({ user: request.session.get('user') ?? null }))
  app.get('/visit', async (request) => {
    const visits = (request.session.get('visits') as number | undefined ?? 0) + 1
    request.session.set('visits', visits)
    return { user: request.session.get('user') ?? null, visits }
  })
}

/** Logs `user` in and returns the session cookie. */
export async function login (app: FastifyInstance, user: string): Promise<string> {
  const response = await app.inject(`/login/${user}`)
  if (response.statusCode !== 200) throw new Error(`login of ${user} failed: ${response.body}`)
  return sessionCookie(response) as string
}

export interface Outcome {
  user: string
  status: number
  /** the user the session belonged to; null for a session that was gone (a new one) */
  seen: string | null
  code?: string
  ms: number
}

/**
 * Requests `path` for every user, one request after the other per user and all users at once,
 * until `during` has settled, and returns what each request got and how long it took.
 */
export async function hammer (app: FastifyInstance, cookies: Map<string, string>, path: string, during: () => Promise<unknown>): Promise<Outcome[]> {
  const outcomes: Outcome[] = []
  const state = { done: false }
  const loop = async (user: string, cookie: string): Promise<void> => {
    do {
      const started = performance.now()
      const response = await app.inject({ url: path, headers: { cookie } })
      const body = response.json()
      outcomes.push({ user, status: response.statusCode, seen: body.user ?? null, code: body.code, ms: performance.now() - started })
    } while (!state.done)
  }
  const loops = [...cookies].map(async ([user, cookie]) => await loop(user, cookie))
  try {
    await during()
  } finally {
    state.done = true
    await Promise.all(loops)
  }
  return outcomes
}

/**
 * Every request got its own user's session, a fresh one, or a 503 with FST_RS_STORE_UNAVAILABLE,
 * and none took longer than `limitMs`. Returns how many got a 503.
 */
export function checkOutcomes (t: Test, outcomes: Outcome[], limitMs: number): number {
  const foreign = outcomes.filter((o) => o.status === 200 && o.seen !== null && o.seen !== o.user)
  const odd = outcomes.filter((o) => o.status !== 200 && !(o.status === 503 && o.code === 'FST_RS_STORE_UNAVAILABLE'))
  const slowest = Math.max(...outcomes.map((o) => o.ms))
  t.same(foreign, [], 'no request got another user\'s session')
  t.same(odd, [], 'every request got its session or a 503')
  t.ok(slowest < limitMs, `the slowest of ${outcomes.length} requests took ${Math.round(slowest)} ms (limit ${limitMs})`)
  return outcomes.filter((o) => o.status === 503).length
}
