import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import type { RedisSessionOptions } from '../lib/index.js'
import { commandDelta, startRedis } from './helpers/index.js'
import { buildApp, counterRoutes, idOf, privateRedis, sessionCookie, type TestApp } from './helpers/app.js'

function routes (app: FastifyInstance): void {
  counterRoutes(app)
  app.get<{ Querystring: { seconds: string } }>('/adjust', async (request) => {
    request.session.adjustTimeout(Number(request.query.seconds))
    request.session.set('n', request.session.get('n', 0))
    return {}
  })
  app.get('/touch', async (request) => {
    request.session.touch()
    return {}
  })
}

const redis = await privateRedis(t)
const app = async (t: Test, options: Partial<RedisSessionOptions> = {}): Promise<TestApp> =>
  await buildApp(t, options, routes, {}, redis)

/** A new session holding `{ n: 1 }`: its cookie and its key. */
async function newSession (setup: TestApp): Promise<{ cookie: string, key: string }> {
  const cookie = sessionCookie(await setup.request('/write')) as string
  return { cookie, key: 'sess:' + idOf(cookie) }
}

/** The stored record's header fields. */
async function header (setup: TestApp, key: string): Promise<{ timeout: string, createdAt: number, expiresAt: string }> {
  const stored = await setup.admin.get(key) as string
  const [timeout, createdAt, expiresAt] = stored.slice(0, stored.indexOf('|')).split(':')
  return { timeout, createdAt: Number(createdAt), expiresAt }
}

const within = (t: Test, value: number, low: number, high: number, what: string): void => {
  t.ok(value >= low && value <= high, `${what}: ${value} within [${low}, ${high}]`)
}

t.test('default timeout: 1200 s, slid back by a read', async (t) => {
  const setup = await app(t)
  const { cookie, key } = await newSession(setup)
  within(t, await setup.admin.ttl(key), 1195, 1200, 'TTL after a write')
  t.same(await header(setup, key), { timeout: '', createdAt: (await header(setup, key)).createdAt, expiresAt: '' }, 'no own timeout, no expiresAt')

  await setup.admin.expire(key, 30)
  t.same((await setup.request('/read', cookie)).json(), { n: 1, isNew: false })
  within(t, await setup.admin.ttl(key), 1195, 1200, 'TTL after a read')

  await setup.admin.expire(key, 30)
  await setup.request('/write', cookie)
  within(t, await setup.admin.ttl(key), 1195, 1200, 'TTL after a write to an existing session')
})

t.test('timeout 0 and null: no TTL, ever', async (t) => {
  for (const timeout of [0, null]) {
    const setup = await app(t, { timeout })
    const { cookie, key } = await newSession(setup)
    t.equal(await setup.admin.ttl(key), -1, `timeout ${String(timeout)}: after a write`)
    t.same((await setup.request('/read', cookie)).json(), { n: 1, isNew: false })
    t.equal(await setup.admin.ttl(key), -1, `timeout ${String(timeout)}: after a read`)
    await setup.request('/write', cookie)
    t.equal(await setup.admin.ttl(key), -1, `timeout ${String(timeout)}: after another write`)
  }
})

t.test('adjustTimeout is stored with the session and leads every later slide', async (t) => {
  const setup = await app(t)
  const { cookie, key } = await newSession(setup)
  t.equal((await setup.request('/adjust?seconds=60', cookie)).statusCode, 200)
  within(t, await setup.admin.ttl(key), 55, 60, 'TTL after adjustTimeout(60)')
  t.equal((await header(setup, key)).timeout, '60', 'the own timeout leads the record')

  await setup.admin.expire(key, 5)
  await setup.request('/read', cookie)
  within(t, await setup.admin.ttl(key), 55, 60, 'a read slides to 60, not to the default 1200')

  await setup.admin.expire(key, 5)
  await setup.request('/write', cookie)
  within(t, await setup.admin.ttl(key), 55, 60, 'a later write keeps the own timeout')
  t.equal((await header(setup, key)).timeout, '60')

  await setup.request('/adjust?seconds=0', cookie)
  t.equal(await setup.admin.ttl(key), -1, 'adjustTimeout(0) removes the TTL')
  t.equal((await header(setup, key)).timeout, '0')
  await setup.request('/read', cookie)
  t.equal(await setup.admin.ttl(key), -1, 'and reads do not bring it back')
  await setup.request('/write', cookie)
  t.equal(await setup.admin.ttl(key), -1, 'nor writes')

  const fresh = sessionCookie(await setup.request('/adjust?seconds=90')) as string
  within(t, await setup.admin.ttl('sess:' + idOf(fresh)), 85, 90, 'on a new session too')
})

t.test('an own timeout is set by an EXPIRE sent after the read, which the request does not wait for', async (t) => {
  const setup = await app(t)
  const { cookie, key } = await newSession(setup)
  await setup.request('/adjust?seconds=60', cookie)
  const ran = await commandDelta(setup.admin, async () => {
    await setup.request('/read', cookie)
    // the app's own connection: once it answers, the EXPIRE sent before has run
    await setup.app.sessionStore.client.ping()
  })
  t.same(ran, { getex: 1, expire: 1, ping: 1 })
  within(t, await setup.admin.ttl(key), 55, 60, 'the own timeout')

  // a Redis that refuses EXPIRE: the read still succeeds with the configured timeout, and the next one tries again
  const refusing = await startRedis({ config: ['rename-command EXPIRE ""'] })
  const admin = refusing.admin()
  t.teardown(async () => {
    admin.disconnect()
    await refusing.stop()
  })
  const failing = await buildApp(t, {}, routes, {}, { redis: refusing, admin })
  const other = await newSession(failing)
  await failing.request('/adjust?seconds=60', other.cookie)
  t.same((await failing.request('/read', other.cookie)).json(), { n: 1, isNew: false })
  await failing.app.sessionStore.client.ping()
  within(t, await admin.ttl(other.key), 1195, 1200, 'the GETEX\'s timeout')
})

t.test('adjustTimeout takes whole seconds, 0 or more', async (t) => {
  const errors: Error[] = []
  const setup = await buildApp(t, {}, (app) => {
    app.addHook('onError', async (request, reply, error) => { errors.push(error) })
    routes(app)
  }, {}, redis)
  const { cookie, key } = await newSession(setup)
  for (const seconds of ['-1', '1.5', 'NaN', 'Infinity', '1e20', String(100 * 365 * 24 * 3600 + 1)]) {
    const response = await setup.request('/adjust?seconds=' + seconds, cookie)
    t.equal(response.statusCode, 500, seconds)
  }
  t.equal(errors.length, 6)
  t.ok(errors.every((error) => error instanceof TypeError), 'TypeErrors')
  t.equal((await header(setup, key)).timeout, '', 'nothing stored')
  within(t, await setup.admin.ttl(key), 1190, 1200, 'the TTL is the default one')
})

t.test('LRU mode (redisTtl: false): no TTL, the record carries expiresAt', async (t) => {
  const setup = await app(t, { redisTtl: false })
  const before = Date.now()
  const { cookie, key } = await newSession(setup)
  t.equal(await setup.admin.ttl(key), -1, 'no TTL')
  const { timeout, createdAt, expiresAt } = await header(setup, key)
  t.equal(timeout, '')
  within(t, createdAt, before, Date.now(), 'createdAt')
  within(t, Number(expiresAt), before + 1_200_000, Date.now() + 1_200_000, 'expiresAt')
  t.same((await setup.request('/read', cookie)).json(), { n: 1, isNew: false })
  t.equal(await setup.admin.ttl(key), -1, 'a read sets no TTL')

  await setup.request('/adjust?seconds=0', cookie)
  t.same(await header(setup, key), { timeout: '0', createdAt, expiresAt: '' }, 'adjustTimeout(0): no expiresAt')
  const ran = await commandDelta(setup.admin, async () => await setup.request('/read', cookie))
  t.same(ran, { get: 1 }, 'a session that never expires is never refreshed')

  const never = await app(t, { redisTtl: false, timeout: 0, prefix: 'never:' })
  const neverCookie = sessionCookie(await never.request('/write')) as string
  t.equal((await header(never, 'never:' + idOf(neverCookie))).expiresAt, '', 'timeout 0: no expiresAt')
  t.same(await commandDelta(never.admin, async () => await never.request('/read', neverCookie)), { get: 1 })
})

t.test('a record past its stored expiresAt is a new session; the old key goes with the next save', async (t) => {
  for (const redisTtl of [false, true]) {
    const setup = await app(t, { redisTtl })
    const { cookie, key } = await newSession(setup)
    const createdAt = Date.now() - 3_600_000
    await setup.admin.set(key, `:${createdAt}:${Date.now() - 1000}|{"n":41}`)

    const read = await setup.request('/read', cookie)
    t.same(read.json(), { n: null, isNew: true }, `redisTtl ${String(redisTtl)}: expired data is not used`)
    t.equal(read.headers['set-cookie'], undefined, 'a read-only request sets no cookie')

    const written = await setup.request('/write', cookie)
    t.same(written.json(), { n: 1 })
    const next = sessionCookie(written) as string
    t.not(idOf(next), idOf(cookie), 'a new id')
    t.equal(await setup.admin.exists(key), 0, 'the expired record is deleted')
    t.equal(await setup.admin.exists('sess:' + idOf(next)), 1)
    t.ok((await header(setup, 'sess:' + idOf(next))).createdAt > createdAt, 'a new createdAt')
  }
})

t.test('LRU mode: a read rewrites the record only when less than 90% of the timeout remains', async (t) => {
  const setup = await app(t, { redisTtl: false })
  const { cookie, key } = await newSession(setup)
  const { createdAt } = await header(setup, key)
  const storeWith = async (remaining: number): Promise<void> => {
    await setup.admin.set(key, `:${createdAt}:${Date.now() + remaining}|{"n":1}`)
  }
  const readCommands = async (url = '/read'): Promise<Record<string, number>> =>
    await commandDelta(setup.admin, async () => await setup.request(url, cookie))

  t.same(await readCommands(), { get: 1 }, 'fresh: a plain GET')
  await storeWith(1_200_000 * 0.95)
  t.same(await readCommands(), { get: 1 }, '95% left: a plain GET')

  await storeWith(1_200_000 * 0.85)
  const before = Date.now()
  t.same(await readCommands(), { get: 1, set: 1 }, '85% left: GET and SET')
  within(t, Number((await header(setup, key)).expiresAt), before + 1_200_000, Date.now() + 1_200_000, 'expiresAt back to the full timeout')
  t.equal(await setup.admin.ttl(key), -1, 'still no TTL')
  t.same((await setup.request('/read', cookie)).json(), { n: 1, isNew: false }, 'data kept')
  t.same(await readCommands(), { get: 1 }, 'fresh again')

  t.same(await readCommands('/touch'), { get: 1, set: 1 }, 'touch() forces the refresh')
  t.same(await commandDelta(setup.admin, async () => await setup.request('/touch')), {}, 'touch() on a new session stores nothing')
})

t.test('LRU mode: the refresh threshold follows the session\'s own timeout', async (t) => {
  const setup = await app(t, { redisTtl: false })
  const { cookie, key } = await newSession(setup)
  await setup.request('/adjust?seconds=60', cookie)
  t.same(await commandDelta(setup.admin, async () => await setup.request('/read', cookie)), { get: 1 },
    'a 60 s session read right after its save is fresh')

  await setup.request('/adjust?seconds=86400', cookie)
  const { createdAt } = await header(setup, key)
  await setup.admin.set(key, `86400:${createdAt}:${Date.now() + 43_200_000}|{"n":1}`)
  t.same(await commandDelta(setup.admin, async () => await setup.request('/read', cookie)), { get: 1, set: 1 },
    'a day-long session with half a day left is refreshed')
})
