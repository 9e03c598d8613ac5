// Issue 16: Memcached as a second engine. The shared behaviour runs in layouts.test.ts; here is what
// only Memcached has: its options, SASL, several servers, its item limit, outages, no owner index.
import { tracingChannel } from 'node:diagnostics_channel'
import t, { type Test } from 'tap'
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify'
import memjs from 'memjs'
import redisSession, { type MemcachedClient, type RedisSessionOptions, type SessionStore } from '../lib/index.js'
import { resolveOptions } from '../lib/options.js'
import { waitFor } from './helpers/index.js'
import { buildSessionApp, counterRoutes, idOf, SECRET, sessionCookie, type SessionApp } from './helpers/app.js'
import { startMemcached, type MemcachedServer, type StartMemcachedOptions } from './helpers/memcached-server.js'

async function privateMemcached (t: Test, options?: StartMemcachedOptions): Promise<MemcachedServer> {
  const server = await startMemcached(options)
  t.teardown(async () => await server.stop())
  return server
}

function routes (app: FastifyInstance): void {
  counterRoutes(app)
  app.get('/blob/:size', async (request) => {
    request.session.set('blob', 'x'.repeat(Number((request.params as { size: string }).size)))
    return {}
  })
  app.get('/owner', async (request) => {
    request.session.setOwner('ada')
    return {}
  })
  app.get('/flash', async (request, reply) => {
    request.flash('info', 'saved')
    return { flashed: true }
  })
  app.get('/take-flash', async (request, reply) => ({ info: reply.flash('info') }))
  app.get('/remember/:seconds', async (request) => {
    request.session.adjustTimeout(Number((request.params as { seconds: string }).seconds))
    return {}
  })
}

const app = async (t: Test, servers: MemcachedServer[], options: Partial<RedisSessionOptions> = {}, more = (app: FastifyInstance): void => {}): Promise<SessionApp> =>
  await buildSessionApp(t, { memcached: { servers: servers.map((server) => server.address) }, ...options }, (app) => { routes(app); more(app) })

const remaining = async (server: MemcachedServer, cookie: string): Promise<number> =>
  Number(/ t(-?\d+)/.exec(await server.command(`mg sess:${idOf(cookie)} t`))?.[1])

function problems (options: Record<string, unknown>): string[] {
  try {
    resolveOptions({ secret: SECRET, ...options } as unknown as RedisSessionOptions)
  } catch (err) {
    return (err as Error).message.slice((err as Error).message.indexOf(': ') + 2).split('; ')
  }
  throw new Error('accepted ' + JSON.stringify(options))
}

t.test('options: what only Redis has is refused beside memcached, each by its path', async (t) => {
  const memcached = { servers: '127.0.0.1:11211' }
  t.same(problems({ memcached, url: 'redis://localhost', layout: 'hash', replicas: { count: 1, timeout: 100 }, host: 'x', password: 'p' }).map((problem) => problem.split(' ')[0]),
    ['/url,', '/host', '/password', '/replicas', '/layout'])
  t.same(problems({ memcached, cache: true }), ['/cache is kept true by Redis CLIENT TRACKING invalidations, not for /memcached: remove /cache'])
  t.match(problems({ memcached, client: {} as never }), ['/client', '/client, /memcached are exclusive: give one way to reach the session store'])
  t.match(problems({ memcached, migrateFrom: { cookieName: 'sid', secret: 'old' } }), ['/migrateFrom is for sessions connect-redis kept in Redis, not for /memcached: remove /migrateFrom'])
  t.same(problems({ memcached: {} }), ['/memcached needs exactly one of /memcached/servers and /memcached/client'])
  t.match(problems({ memcached: { servers: ['user:pw@host:11211'] } })[0], /^\/memcached\/servers\/0 must be 'host:port'.*without credentials/)
  t.match(problems({ memcached, prefix: 'p'.repeat(208) }), ['/prefix must be at most 207 bytes with /memcached'])
  t.same(problems({ memcached: { client: {} } }), ['/memcached/client must be a memjs Client instance (got an object)'])
  t.doesNotThrow(() => resolveOptions({ secret: SECRET, memcached: { servers: 'a:1, b' }, layout: 'string', compress: {} }))
})

t.test('several servers: sessions spread by consistent hashing; a lost server loses its sessions, never to a wrong one', async (t) => {
  const servers = [await privateMemcached(t), await privateMemcached(t)]
  const setup = await app(t, servers, { commandTimeout: 1000 })
  const cookies = await Promise.all(Array.from({ length: 40 }, async () => sessionCookie(await setup.request('/write')) as string))
  const homes = await Promise.all(cookies.map(async (cookie) => await Promise.all(servers.map(async (server) => !Number.isNaN(await remaining(server, cookie))))))
  t.ok(homes.every((found) => found.filter(Boolean).length === 1), 'each session lives on one server')
  const onFirst = cookies.filter((_, i) => homes[i][0])
  t.ok(onFirst.length > 0 && onFirst.length < cookies.length, `both servers hold sessions (${onFirst.length} of ${cookies.length} on the first)`)

  await servers[0].kill()
  for (const cookie of cookies) {
    const response = await setup.request('/read', cookie)
    if (homes[cookies.indexOf(cookie)][0]) t.equal(response.json().code, 'FST_RS_STORE_UNAVAILABLE', 'a session of the lost server: 503')
    else t.same(response.json(), { n: 1, isNew: false }, 'a session of the other server: served')
  }
  await servers[0].revive()
  await waitFor(async () => (await setup.request('/read', onFirst[0])).statusCode === 200, { what: 'the revived server to answer' })
  for (const cookie of onFirst) t.same((await setup.request('/read', cookie)).json(), { n: null, isNew: true }, 'its sessions are gone: fresh ones')
})

t.test('down: 503 FST_RS_STORE_UNAVAILABLE within commandTimeout, refused or silent; back: recovers by itself', async (t) => {
  const server = await privateMemcached(t)
  const commandTimeout = 500
  const setup = await app(t, [server], { commandTimeout }, (app) => {
    app.get('/ping', { config: { session: false } }, async () => { await app.sessionStore.ping(); return {} })
  })
  const cookie = sessionCookie(await setup.request('/write')) as string

  server.pause()
  for (const url of ['/read', '/ping']) {
    const started = performance.now()
    const response = await setup.request(url, cookie)
    t.equal(response.json().code, 'FST_RS_STORE_UNAVAILABLE', `${url}: a server that does not answer (got ${response.statusCode} ${response.body})`)
    t.ok(performance.now() - started < commandTimeout * 10, 'within commandTimeout (and a loaded machine\'s slack)')
  }
  server.resume()
  await waitFor(async () => (await setup.request('/read', cookie)).statusCode === 200, { what: 'answers after SIGCONT' })

  await server.kill()
  for (const url of ['/read', '/write', '/ping']) t.equal((await setup.request(url, cookie)).json().code, 'FST_RS_STORE_UNAVAILABLE', `${url}: a server that refuses connections`)
  await server.revive()
  await waitFor(async () => (await setup.request('/write')).statusCode === 200, { what: 'sessions to work again' })
})

t.test('SASL: the right credentials work, wrong ones fail register with FST_RS_CONNECTION_REJECTED', async (t) => {
  const server = await privateMemcached(t, { sasl: { username: 'app', password: 's3cret' } })
  const setup = await buildSessionApp(t, { memcached: { servers: server.address, username: 'app', password: 's3cret' } }, routes)
  const cookie = sessionCookie(await setup.request('/write')) as string
  t.same((await setup.request('/write', cookie)).json(), { n: 2 })

  const refused = Fastify()
  const err = await refused.register(redisSession, { secret: SECRET, memcached: { servers: server.address, username: 'app', password: 'wrong' } }).then(() => null, (err: FastifyError) => err)
  t.equal(err?.code, 'FST_RS_CONNECTION_REJECTED')
  t.match(err?.message, 'check memcached.username and memcached.password')
  await refused.close()
})

t.test('an unreachable server does not fail register: requests get 503 until it answers', async (t) => {
  const server = await privateMemcached(t)
  await server.kill()
  const setup = await app(t, [server])
  t.equal((await setup.request('/write')).json().code, 'FST_RS_STORE_UNAVAILABLE')
  await server.revive()
  t.equal((await setup.request('/write')).statusCode, 200)
})

t.test('Memcached\'s item limit: a session it refuses is FST_RS_SESSION_TOO_LARGE naming the limit, nothing written', async (t) => {
  const server = await privateMemcached(t)
  const setup = await app(t, [server], { maxSize: 4 * 1024 * 1024 })
  const cookie = sessionCookie(await setup.request('/write')) as string
  const response = await setup.request('/blob/1500000', cookie)
  t.equal(response.statusCode, 500)
  t.equal(response.json().code, 'FST_RS_SESSION_TOO_LARGE')
  t.match(response.json().message, 'what Memcached stores in one item (1 MB unless memcached runs with a larger -I')
  t.same((await setup.request('/read', cookie)).json(), { n: 1, isNew: false }, 'the stored session is as it was')
  t.equal((await setup.request('/blob/1500000')).json().code, 'FST_RS_SESSION_TOO_LARGE', 'a new session too')
})

t.test('a server out of memory (memcached -M) refuses the save: 503', async (t) => {
  const server = await privateMemcached(t, { args: ['-M', '-m', '2'] })
  const setup = await app(t, [server])
  let response
  for (let i = 0; i < 100 && response?.statusCode !== 503; i++) response = await setup.request('/blob/100000')
  t.equal(response?.json().code, 'FST_RS_STORE_UNAVAILABLE')
  t.match(response?.json().message, 'Memcached refused the save with status 0x82')
})

t.test('compression, flash and absoluteTimeout keep working on Memcached', async (t) => {
  const server = await privateMemcached(t)
  const setup = await app(t, [server], { compress: { threshold: 100 }, absoluteTimeout: 600 })
  const cookie = sessionCookie(await setup.request('/blob/5000')) as string
  t.ok(Number((await server.stats()).bytes) < 1000, 'the 5000-byte session is stored compressed')
  t.same((await setup.request('/write', cookie)).json(), { n: 1 })
  await setup.request('/flash', cookie)
  t.same((await setup.request('/take-flash', cookie)).json(), { info: ['saved'] })
  t.same((await setup.request('/take-flash', cookie)).json(), { info: [] }, 'shown once')
  await server.command(`touch sess:${idOf(cookie)} 5000`)
  await setup.request('/read', cookie)
  await waitFor(async () => await remaining(server, cookie) <= 600, { what: 'the read to cut the expiry at the absolute end' })
})

t.test('an own timeout beyond 30 days is sent as a Unix time, as Memcached wants it', async (t) => {
  const server = await privateMemcached(t)
  const setup = await app(t, [server])
  const cookie = sessionCookie(await setup.request('/write')) as string
  const days40 = 40 * 24 * 3600
  await setup.request(`/remember/${days40}`, cookie)
  t.ok(Math.abs(await remaining(server, cookie) - days40) <= 2, 'saved with 40 days to live')
  await server.command(`touch sess:${idOf(cookie)} 10`)
  await setup.request('/read', cookie)
  await waitFor(async () => Math.abs(await remaining(server, cookie) - days40) <= 2, { what: 'the read to slide it to 40 days' })
})

t.test('no owner index: setOwner, listByOwner and destroyByOwner say Memcached lacks it', async (t) => {
  const server = await privateMemcached(t)
  const setup = await app(t, [server])
  const response = await setup.request('/owner')
  t.equal(response.statusCode, 500)
  t.equal(response.json().code, 'FST_RS_UNSUPPORTED')
  t.match(response.json().message, 'setOwner() needs the owner index, which Memcached cannot keep')
  await t.rejects(setup.app.sessionStore.listByOwner('ada'), { code: 'FST_RS_UNSUPPORTED', message: /listByOwner\(\)/ })
  await t.rejects(setup.app.sessionStore.destroyByOwner('ada'), { code: 'FST_RS_UNSUPPORTED', message: /destroyByOwner\(\)/ })
  t.equal(await setup.app.sessionStore.sweep(), 0, 'Memcached expires sessions itself')
})

t.test('the tracing channels name the store memcached', async (t) => {
  const contexts: unknown[] = []
  const channel = tracingChannel('fastify-redis-sessions:save')
  const handlers = { start () {}, end () {}, asyncStart () {}, error () {}, asyncEnd (context: unknown) { contexts.push(context) } }
  channel.subscribe(handlers)
  t.teardown(() => channel.unsubscribe(handlers))
  const setup = await app(t, [await privateMemcached(t)])
  await setup.request('/write')
  t.match(contexts, [{ layout: 'memcached', outcome: 'saved' }])
})

t.test('a memjs client you own is used as it is and never closed', async (t) => {
  const server = await privateMemcached(t)
  const client = memjs.Client.create(server.address, { logger: { log: () => {} } })
  t.teardown(() => client.close())
  const setup = await buildSessionApp(t, { memcached: { client } }, routes)
  t.equal((setup.app.sessionStore as unknown as SessionStore<MemcachedClient>).client, client)
  const cookie = sessionCookie(await setup.request('/write')) as string
  t.same(await setup.app.sessionStore.get(idOf(cookie)), { n: 1 })
  await setup.app.close()
  t.equal(await client.set('still', 'open', {}), true, 'the client still works after app.close()')
})
