// What every variant server shares: settings from the parent, the routes and the IPC protocol.
import { Session } from 'node:inspector'
import { promisify } from 'node:util'
import { COOKIE_NAME } from './identity.js'

/** `{ redisUrl, layout? }`, passed by bench/server.js as the first argument. */
export const settings = JSON.parse(process.argv[2] ?? '{}')

/** Stored by every write beside the counter: a nested value, as a login leaves in most sessions. */
export const USER = { id: 'user-1', roles: ['reader'] }

/** The routes of bench/variants.js, written against the get/set API all three session plugins share. */
export function sessionRoutes (app) {
  app.get('/untouched', async () => ({ ok: true }))
  app.get('/read', async (request) => ({ views: request.session.get('views') ?? 0 }))
  app.get('/write', async (request) => {
    const views = (request.session.get('views') ?? 0) + 1
    request.session.set('views', views)
    request.session.set('user', USER)
    return { views }
  })
}

/** Seconds the floors' sessions live. */
export const FLOOR_TIMEOUT = 1200

/**
 * The floors' routes: the raw Cookie header is the key (no parsing, no signature, nothing but
 * the round trips); `load(key)` resolves to the stored JSON or null, sliding its expiry, and
 * `save(key, json)` stores it for FLOOR_TIMEOUT seconds.
 */
export function floorRoutes (app, { load, save }) {
  let created = 0
  const keyOf = (cookieHeader) => 'floor:' + cookieHeader
  const read = async (cookieHeader) => JSON.parse(await load(keyOf(cookieHeader)) ?? '{}')
  app.get('/untouched', async () => ({ ok: true }))
  app.get('/read', async (request) => ({ views: (await read(request.headers.cookie)).views ?? 0 }))
  app.get('/write', async (request, reply) => {
    let cookie = request.headers.cookie
    let data = {}
    if (cookie === undefined) {
      cookie = `${COOKIE_NAME}=${created++}`
      reply.header('set-cookie', cookie)
    } else {
      data = await read(cookie)
    }
    data.views = (data.views ?? 0) + 1
    data.user = USER
    await save(keyOf(cookie), JSON.stringify(data))
    return { views: data.views }
  })
}

/**
 * Listens on a free loopback port, tells the parent which, and answers its messages:
 * `cpu-start`/`cpu-stop` (CPU µs spent in between), `profile-start`/`profile-stop` (a CPU
 * profile of what ran in between, as JSON), `heap` (heap in use), `exit` (close cleanly).
 * bench/server.js starts every server with
 * --expose-gc: a full GC before each run keeps one run's garbage from being charged to the next.
 */
export async function serve (app) {
  const inspector = new Session()
  inspector.connect()
  const post = promisify(inspector.post.bind(inspector))
  await app.listen({ port: 0, host: '127.0.0.1' })
  let cpuAtStart = process.cpuUsage()
  process.on('message', async ({ type }) => {
    if (type === 'cpu-start') {
      globalThis.gc()
      cpuAtStart = process.cpuUsage()
      process.send({ type })
    } else if (type === 'cpu-stop') {
      const { user, system } = process.cpuUsage(cpuAtStart)
      process.send({ type, micros: user + system })
    } else if (type === 'profile-start') {
      await post('Profiler.enable')
      await post('Profiler.setSamplingInterval', { interval: 100 })
      await post('Profiler.start')
      process.send({ type })
    } else if (type === 'profile-stop') {
      const { profile } = await post('Profiler.stop')
      process.send({ type, profile: JSON.stringify(profile) })
    } else if (type === 'heap') {
      globalThis.gc()
      const { heapUsed, rss } = process.memoryUsage()
      process.send({ type, heapUsed, rss })
    } else if (type === 'exit') {
      await app.close()
      process.exit(0)
    }
  })
  process.send({ type: 'ready', port: app.server.address().port })
}
