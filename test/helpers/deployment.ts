import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import type { RedisSessionOptions } from '../../lib/index.js'
import { sessionCookie } from './app.js'

/**
 * The README's recommended ACL commands: what every layout, the owner index, `replicas` and
 * ioredis' handshake (INFO) need.
 */
export const ACL_COMMANDS = '+get +getex +set +del +exists +expire +pexpire +persist +pttl +hget +hgetall +hset +hdel +hexists ' +
  '+zadd +zrem +zscore +zrangebyscore +sadd +srem +smembers +time +eval +evalsha +wait +ping +info'
/** What ioredis' Cluster client adds: the slot map, the ready check, its named slot-map connection. */
export { CLUSTER_COMMANDS as CLUSTER_ACL_COMMANDS } from '../../lib/connection.js'

/** What the local cache (`cache`) adds: tracking, and the invalidation connection's id and channel. */
export const CACHE_ACL_COMMANDS = '+client|id +client|tracking +subscribe &__redis__:invalidate'

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
      // as a network would: an answer given at once (a 503 while Redis is known to be down)
      // must not keep the event loop from the timers that end the hammering
      await new Promise((resolve) => setImmediate(resolve))
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

/**
 * Runs close-app.ts in a process of its own (with this process' loaders) for each options object
 * in `shapes`, and resolves to the status of each one's request once the process has exited by
 * itself; rejects if it is still alive `timeout` ms after the last `app.close()` returned:
 * something the plugin opened outlived it.
 */
export async function expectCleanExit (shapes: Array<Partial<RedisSessionOptions>>, timeout = 2000): Promise<number[]> {
  // the TypeScript loader only: tap's coverage and mock hooks would slow the child down, and its
  // coverage, of code compiled apart, would not line up with this process'
  const loaders = process.execArgv.filter((arg) => !/@tapjs\/(processinfo|mock)/.test(arg))
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(NODE_OPTIONS|NODE_V8_COVERAGE|_TAPJS_PROCESSINFO_)/.test(name)))
  const child = spawn(process.execPath, [...loaders, fileURLToPath(new URL('close-app.ts', import.meta.url))], {
    env: { ...env, FRS_SHAPES: JSON.stringify(shapes) },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  let output = ''
  return await new Promise((resolve, reject) => {
    const fail = (why: string): void => {
      child.kill('SIGKILL')
      reject(new Error(`${why} (output: ${output})`))
    }
    // start-up includes compiling TypeScript: generous, only against a hang before the end
    let timer = setTimeout(() => fail('no end within 60 s'), 60_000)
    child.stdout.on('data', (chunk: Buffer) => {
      output += String(chunk)
      clearTimeout(timer)
      timer = setTimeout(() => fail(`still running ${timeout} ms after the last app.close()`), timeout)
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      if (code === 0) resolve(JSON.parse(output) as number[])
      else reject(new Error(`exited with ${String(code)} (output: ${output})`))
    })
  })
}

/**
 * Counts of the handles `fn` left behind in this process (sockets, timers…), by kind, after
 * `settle` ms for sockets that are closing: an in-process check of what `app.close()` leaves open.
 */
export async function handlesLeftBy (fn: () => Promise<void>, settle = 700): Promise<Record<string, number>> {
  const count = (): Map<string, number> => {
    const counts = new Map<string, number>()
    for (const kind of process.getActiveResourcesInfo()) counts.set(kind, (counts.get(kind) ?? 0) + 1)
    return counts
  }
  const before = count()
  await fn()
  await new Promise((resolve) => setTimeout(resolve, settle))
  const left: Record<string, number> = {}
  for (const [kind, n] of count()) if (n > (before.get(kind) ?? 0)) left[kind] = n - (before.get(kind) ?? 0)
  return left
}
