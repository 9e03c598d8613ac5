// setOwner(owner, info) and listByOwner's details: per layout, in both expiry modes, on Cluster and with the cache.
import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import redisSession, { type RedisSessionOptions, type SessionDetails } from '../lib/index.js'
import { loadedSession } from '../lib/stores/record.js'
import { commandDelta, startCluster, waitFor } from './helpers/index.js'
import { buildApp, idOf, privateRedis, recordTraffic, SECRET, sessionCookie, type TestApp } from './helpers/app.js'

const TIMEOUT = 600
const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

function routes (app: FastifyInstance): void {
  app.get('/login/:user', async (request) => {
    const { ua } = request.query as { ua?: string }
    await request.session.regenerate()
    request.session.setOwner((request.params as { user: string }).user, ua === undefined ? undefined : { userAgent: ua, ip: request.ip })
    return {}
  })
  app.get('/own/:user', async (request) => {
    request.session.setOwner((request.params as { user: string }).user)
    return {}
  })
  app.get('/write', async (request) => {
    request.session.set('n', (request.session.get('n') as number | undefined ?? 0) + 1)
    return {}
  })
  app.get('/touch', async (request) => {
    request.session.touch()
    return {}
  })
  app.get('/timeout/:seconds', async (request) => {
    request.session.adjustTimeout(Number((request.params as { seconds: string }).seconds))
    return {}
  })
  app.get('/keep', async (request) => {
    await request.session.regenerate(request.session.keys())
    return {}
  })
  app.get('/afresh', async (request) => {
    await request.session.regenerate()
    request.session.set('visitor', true)
    return {}
  })
  app.get('/info/:kind', async (request) => {
    const info = (request.params as { kind: string }).kind === 'large' ? { userAgent: 'x'.repeat(1100) } : ['a list']
    request.session.setOwner('someone', info as unknown as Record<string, unknown>)
    return {}
  })
}

/** Logs `user` in on a new browser, with `ua` as its user agent; resolves to its cookie. */
async function login (setup: TestApp, user: string, ua?: string): Promise<string> {
  const query = ua === undefined ? '' : '?ua=' + encodeURIComponent(ua)
  return sessionCookie(await setup.request(`/login/${user}${query}`)) as string
}

/** The listing without the times, which the tests check on their own. */
const summary = (sessions: SessionDetails[]): Array<{ id: string, info: unknown }> => sessions.map(({ id, info }) => ({ id, info }))

const { redis, admin } = await privateRedis(t)

for (const layout of ['string', 'hash', 'bucketed'] as const) {
  for (const redisTtl of [true, false]) {
    t.test(`${layout} layout, ${redisTtl ? 'Redis TTLs' : 'LRU mode'}`, async (t) => {
      const prefix = `${layout}-${String(redisTtl)}:`
      const options: Partial<RedisSessionOptions> = { layout, redisTtl, prefix, timeout: TIMEOUT, ...(layout === 'bucketed' ? { buckets: 16 } : {}) }
      const setup = await buildApp(t, options, routes, {}, { redis, admin })
      const store = setup.app.sessionStore

      t.test('the info round-trips, with when the session began, was last seen and ends', async (t) => {
        const before = Date.now()
        const cookie = await login(setup, 'ada', 'Firefox on Linux')
        await setup.request('/write', cookie) // a write that leaves the owner alone keeps the info
        const [ada, ...others] = await store.listByOwner('ada')
        const now = Date.now()
        t.same(others, [])
        t.same(summary([ada]), [{ id: idOf(cookie), info: { userAgent: 'Firefox on Linux', ip: '127.0.0.1' } }])
        t.ok(ada.createdAt >= before && ada.createdAt <= now, 'createdAt is the login')
        t.ok(ada.expiresAt !== null && ada.expiresAt >= before + TIMEOUT * 1000 - 5 && ada.expiresAt <= now + TIMEOUT * 1000, 'ends a timeout after its last request')
        t.ok(ada.lastSeenAt !== null && ada.lastSeenAt >= ada.createdAt && ada.lastSeenAt <= now, 'last seen during this test')
      })

      t.test('newest first, by when each session was last seen', async (t) => {
        const laptop = await login(setup, 'bob', 'laptop')
        await sleep(30)
        const phone = await login(setup, 'bob', 'phone')
        await sleep(30)
        t.same((await store.listByOwner('bob')).map(({ id }) => id), [idOf(phone), idOf(laptop)], 'the phone came last')
        await setup.request('/touch', laptop) // slides the expiry: by the read, or in LRU mode by rewriting it
        const [first, second] = await store.listByOwner('bob')
        t.same([first.id, second.id], [idOf(laptop), idOf(phone)], 'the laptop was used since')
        t.ok(first.createdAt < second.createdAt, 'though the phone\'s session is the newer one')
        t.ok((first.lastSeenAt as number) >= (second.lastSeenAt as number) + 25)
      })

      t.test('a session that never expires has no expiry and no last-seen time; its own timeout counts', async (t) => {
        const forever = await login(setup, 'cyd', 'forever')
        await sleep(30)
        const remembered = await login(setup, 'cyd', 'remembered')
        await setup.request('/timeout/0', forever)
        await setup.request('/timeout/3600', remembered)
        const now = Date.now()
        const sessions = await store.listByOwner('cyd')
        t.same(summary(sessions), [{ id: idOf(remembered), info: { userAgent: 'remembered', ip: '127.0.0.1' } }, { id: idOf(forever), info: { userAgent: 'forever', ip: '127.0.0.1' } }],
          'one never seen again is ordered by when it began')
        const [kept, endless] = sessions
        t.match(endless, { expiresAt: null, lastSeenAt: null })
        t.ok((kept.expiresAt as number) > now + (3600 - 5) * 1000 && (kept.expiresAt as number) <= Date.now() + 3600 * 1000, 'an hour from its last request')
        t.ok((kept.lastSeenAt as number) >= now - 1000 && (kept.lastSeenAt as number) <= Date.now())
      })

      t.test('regenerate(keep) keeps the info, regenerate() drops owner and info, setOwner without info clears it', async (t) => {
        const first = await login(setup, 'dee', 'tablet')
        const kept = sessionCookie(await setup.request('/keep', first)) as string
        t.not(idOf(kept), idOf(first))
        t.same(summary(await store.listByOwner('dee')), [{ id: idOf(kept), info: { userAgent: 'tablet', ip: '127.0.0.1' } }])
        await setup.request('/own/dee', kept)
        t.same(summary(await store.listByOwner('dee')), [{ id: idOf(kept), info: null }])
        const afresh = sessionCookie(await setup.request('/afresh', await login(setup, 'fay', 'watch'))) as string
        t.same(await store.listByOwner('fay'), [], 'no longer filed under fay')
        await setup.request('/own/fay', afresh)
        t.same(summary(await store.listByOwner('fay')), [{ id: idOf(afresh), info: null }], 'and the info did not come back with the owner')
      })

      t.test('the listing costs two round trips however many sessions: the index, then every session', async (t) => {
        for (let i = 0; i < 3; i++) await login(setup, 'gus', `device ${i}`)
        await sleep(50) // the index prune that follows a login
        const traffic = recordTraffic(store.client)
        const delta = await commandDelta(admin, async () => {
          t.equal((await store.listByOwner('gus')).length, 3)
        })
        t.equal(traffic.roundTrips, 2)
        const details = layout === 'bucketed' ? { hget: 3, ...(redisTtl ? { zscore: 3 } : {}) } : { [layout === 'hash' ? 'hget' : 'get']: 3, pttl: 3 }
        t.same(delta, { smembers: 1, ...details })
      })

      t.test('expired sessions are not listed and leave the index', async (t) => {
        const short = await buildApp(t, { ...options, prefix: prefix + 'short:', timeout: 2 }, routes, {}, { redis, admin })
        const cookie = await login(short, 'hal', 'old phone')
        t.equal((await short.app.sessionStore.listByOwner('hal')).length, 1)
        await waitFor(async () => (await short.app.sessionStore.listByOwner('hal')).length === 0, { what: 'the session to expire' })
        t.equal(await admin.scard(prefix + 'short:owner:' + Buffer.from('hal').toString('base64url')), 0)
        if (layout !== 'bucketed' && !redisTtl) t.equal(await admin.exists(prefix + 'short:' + idOf(cookie)), 1, 'in LRU mode by the expiry the record keeps')
      })

      t.test('info must be a plain object of at most 1 KiB as JSON', async (t) => {
        for (const kind of ['large', 'list']) {
          const response = await setup.request('/info/' + kind)
          t.equal(response.statusCode, 500)
          t.equal(response.json().code, 'FST_RS_INVALID_INFO', kind)
          t.equal(sessionCookie(response), undefined, 'nothing stored')
        }
        t.match((await setup.request('/info/large')).json().message, /is 1116 bytes as JSON, more than 1024: keep a few short fields/)
      })
    })
  }
}

t.test('with absoluteTimeout cutting the expiry, it is the end of the lifetime, and lastSeenAt the earliest the last request can have been', async (t) => {
  for (const redisTtl of [true, false]) {
    const setup = await buildApp(t, { prefix: `lifetime-${String(redisTtl)}:`, timeout: TIMEOUT, absoluteTimeout: 60, redisTtl }, routes, {}, { redis, admin })
    await login(setup, 'lee', 'kiosk')
    const [kiosk] = await setup.app.sessionStore.listByOwner('lee')
    t.ok(Math.abs((kiosk.expiresAt as number) - (kiosk.createdAt + 60_000)) < 1000, `ends a minute after it began (redisTtl ${String(redisTtl)})`)
    t.equal(kiosk.lastSeenAt, kiosk.createdAt, 'a whole timeout before the end is before it began')
  }
})

t.test('a header written before info existed still reads; an owner without info has none', async (t) => {
  const owner = Buffer.from('ada').toString('base64url')
  t.match(loadedSession(`:1795395387756::${owner}`, {}, undefined), { owner: 'ada', info: undefined, createdAt: 1795395387756 })
  const info = Buffer.from('{"ip":"::1"}').toString('base64url')
  t.match(loadedSession(`60:1795395387756::${owner}:${info}`, {}, undefined), { owner: 'ada', info, timeout: 60 })
})

t.test('a record whose info does not decode is left out of the listing, and still ended by destroyByOwner', async (t) => {
  const setup = await buildApp(t, { prefix: 'broken:' }, routes, {}, { redis, admin })
  const cookies = [await login(setup, 'ivy', 'one'), await login(setup, 'ivy', 'two'), await login(setup, 'ivy', 'three')]
  for (const [cookie, info] of [[cookies[0], 'not json'], [cookies[1], '[1]']]) {
    const key = 'broken:' + idOf(cookie)
    const stored = await admin.get(key) as string
    const header = stored.slice(0, stored.indexOf('|'))
    await admin.set(key, header.slice(0, header.lastIndexOf(':') + 1) + Buffer.from(info).toString('base64url') + stored.slice(header.length), 'KEEPTTL')
  }
  t.same((await setup.app.sessionStore.listByOwner('ivy')).map(({ id }) => id), [idOf(cookies[2])])
  t.equal(await setup.app.sessionStore.destroyByOwner('ivy'), 3)
})

t.test('a hash without its header field is left out of the listing, and still ended by destroyByOwner', async (t) => {
  const setup = await buildApp(t, { prefix: 'headless:', layout: 'hash' }, routes, {}, { redis, admin })
  const cookie = await login(setup, 'jo', 'one')
  await setup.request('/write', cookie) // a field beside the header, so the hash stays without it
  await admin.hdel('headless:' + idOf(cookie), '__proto__')
  t.same(await setup.app.sessionStore.listByOwner('jo'), [])
  t.equal(await setup.app.sessionStore.destroyByOwner('jo'), 1)
  t.equal(await admin.exists('headless:' + idOf(cookie)), 0)
})

t.test('with the local cache, a session read from memory keeps its info through the next save', async (t) => {
  const setup = await buildApp(t, { prefix: 'cached:', cache: true }, routes, {}, { redis, admin })
  const cookie = await login(setup, 'kim', 'cached browser')
  await setup.request('/write', cookie) // loaded from Redis, cached by its save
  const traffic = recordTraffic(setup.app.sessionStore.client)
  await setup.request('/write', cookie)
  t.same(traffic.commands, ['set'], 'read from the cache, then saved')
  t.same(summary(await setup.app.sessionStore.listByOwner('kim')), [{ id: idOf(cookie), info: { userAgent: 'cached browser', ip: '127.0.0.1' } }])
})

t.test('on Redis Cluster, every layout: details of sessions spread over the masters, in two round trips', async (t) => {
  const cluster = await startCluster()
  t.teardown(async () => await cluster.stop())
  for (const layout of ['string', 'hash', 'bucketed'] as const) {
    const app = Fastify()
    t.teardown(async () => await app.close())
    await app.register(redisSession, { secret: SECRET, cluster: { nodes: cluster.nodes }, layout, prefix: layout + ':', timeout: TIMEOUT })
    routes(app)
    const request = async (url: string, cookie?: string): Promise<string> =>
      sessionCookie(await app.inject({ url, headers: cookie === undefined ? {} : { cookie } })) as string
    const ids: string[] = []
    for (let i = 0; i < 6; i++) {
      ids.unshift(idOf(await request(`/login/ivy?ua=device${i}`)))
      await sleep(10)
    }
    await sleep(50) // the index prune that follows a login
    const traffic = recordTraffic(app.sessionStore.client)
    const sessions = await app.sessionStore.listByOwner('ivy')
    t.equal(traffic.roundTrips, 2, `${layout}: two round trips`)
    t.same(sessions.map(({ id }) => id), ids, `${layout}: newest first`)
    t.same(sessions.map(({ info }) => info?.userAgent), ['device5', 'device4', 'device3', 'device2', 'device1', 'device0'])
    const now = Date.now()
    t.ok(sessions.every(({ createdAt, expiresAt, lastSeenAt }) => (lastSeenAt as number) >= createdAt && (expiresAt as number) <= now + TIMEOUT * 1000), `${layout}: the times`)
    t.equal(await app.sessionStore.destroyByOwner('ivy'), 6)
  }
})
