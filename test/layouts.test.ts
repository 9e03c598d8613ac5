import t, { type Test } from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import type { Redis } from 'ioredis'
import type { MemcachedClient, RedisSessionOptions, SessionStore } from '../lib/index.js'
import { bucketKeys, bucketOf } from '../lib/stores/buckets.js'
import { commandDelta, startCluster, startRedis, waitFor } from './helpers/index.js'
import { buildApp, buildSessionApp, counterRoutes, idOf, privateRedis, recordMemcachedTraffic, recordTraffic, sessionCookie, type SessionApp, type TrafficRecorder } from './helpers/app.js'
import { memcachedDelta, startMemcached, type MemcachedServer } from './helpers/memcached-server.js'

// The behaviour every layout promises, run once per layout. Where the layouts differ (keys,
// expiry bookkeeping, commands) the facts below say how.
type Layout = 'string' | 'hash' | 'bucketed'

interface Cost {
  trips: number
  sent: string[]
  ran: Record<string, number>
}

interface LayoutFacts {
  /** seconds until the store forgets the session; -1 when nothing expires it */
  remaining: (id: string) => Promise<number>
  /** makes the session expire now, as time passing would */
  expireNow: (id: string) => Promise<void>
  /** leaves the session 10 s to live */
  shorten: (id: string) => Promise<void>
  /** stores something under the session's key that is not a session */
  corrupt: (id: string) => Promise<void>
  costs: Record<'fresh' | 'read' | 'unchanged' | 'write' | 'regenerate', Cost>
}

const PREFIX = 'sess:'
const bucket = (id: string): { hash: string, index: string } => bucketKeys(PREFIX, bucketOf(id, 65536))

const FACTS: Record<Layout, (admin: Redis) => LayoutFacts> = {
  string: (admin) => ({
    remaining: async (id) => await admin.ttl(PREFIX + id),
    expireNow: async (id) => { await admin.del(PREFIX + id) },
    shorten: async (id) => { await admin.expire(PREFIX + id, 10) },
    corrupt: async (id) => { await admin.set(PREFIX + id, 'no header') },
    costs: {
      fresh: { trips: 1, sent: ['set'], ran: { set: 1 } },
      read: { trips: 1, sent: ['getex'], ran: { getex: 1 } },
      unchanged: { trips: 1, sent: ['getex'], ran: { getex: 1 } },
      write: { trips: 2, sent: ['getex', 'set'], ran: { getex: 1, set: 1 } },
      regenerate: { trips: 2, sent: ['getex', 'set', 'del'], ran: { getex: 1, set: 1, del: 1 } }
    }
  }),
  hash: (admin) => ({
    remaining: async (id) => await admin.ttl(PREFIX + id),
    expireNow: async (id) => { await admin.del(PREFIX + id) },
    shorten: async (id) => { await admin.expire(PREFIX + id, 10) },
    // a hash without the header field
    corrupt: async (id) => { await admin.hdel(PREFIX + id, '__proto__') },
    costs: {
      fresh: { trips: 1, sent: ['evalsha'], ran: { evalsha: 1, exists: 1, hset: 1, expire: 1 } },
      read: { trips: 1, sent: ['evalsha'], ran: { evalsha: 1, hgetall: 1, hget: 1, expire: 1 } },
      unchanged: { trips: 1, sent: ['evalsha'], ran: { evalsha: 1, hgetall: 1, hget: 1, expire: 1 } },
      write: { trips: 2, sent: ['evalsha', 'evalsha'], ran: { evalsha: 2, hgetall: 1, hget: 1, expire: 2, exists: 1, hset: 1 } },
      regenerate: { trips: 2, sent: ['evalsha', 'evalsha', 'del'], ran: { evalsha: 2, hgetall: 1, hget: 1, expire: 2, exists: 1, hset: 1, del: 1 } }
    }
  }),
  bucketed: (admin) => ({
    remaining: async (id) => {
      const score = await admin.zscore(bucket(id).index, id)
      return score === null ? -1 : Math.round((Number(score) - Date.now()) / 1000)
    },
    // left in its bucket: a session past its score is gone even before a sweep removes it
    expireNow: async (id) => { await admin.zadd(bucket(id).index, Date.now() - 1000, id) },
    shorten: async (id) => { await admin.zadd(bucket(id).index, Date.now() + 10_000, id) },
    corrupt: async (id) => { await admin.hset(bucket(id).hash, id, 'no header') },
    costs: {
      fresh: { trips: 1, sent: ['evalsha'], ran: { evalsha: 1, hexists: 1, hset: 1, time: 1, zadd: 1 } },
      read: { trips: 1, sent: ['evalsha'], ran: { evalsha: 1, hget: 1, zscore: 1, time: 1, zadd: 1 } },
      unchanged: { trips: 1, sent: ['evalsha'], ran: { evalsha: 1, hget: 1, zscore: 1, time: 1, zadd: 1 } },
      write: { trips: 2, sent: ['evalsha', 'evalsha'], ran: { evalsha: 2, hget: 1, zscore: 1, time: 2, zadd: 2, hexists: 1, hset: 1 } },
      regenerate: { trips: 2, sent: ['evalsha', 'evalsha', 'hdel', 'zrem'], ran: { evalsha: 2, hget: 1, zscore: 1, time: 2, zadd: 2, hexists: 1, hset: 1, hdel: 1, zrem: 1 } }
    }
  })
}

/** Memcached: one item per session, read with GAT, saved with ADD or REPLACE (all counted as `set`). */
const memcachedFacts = (server: MemcachedServer): LayoutFacts => ({
  // meta get's `t` flag: the seconds left, -1 for never
  remaining: async (id) => Number(/ t(-?\d+)/.exec(await server.command(`mg ${PREFIX}${id} t`))?.[1]),
  expireNow: async (id) => { await server.command(`delete ${PREFIX}${id}`) },
  shorten: async (id) => { await server.command(`touch ${PREFIX}${id} 10`) },
  corrupt: async (id) => { await server.command(`set ${PREFIX}${id} 0 0 9\r\nno header`) },
  costs: {
    fresh: { trips: 1, sent: ['add'], ran: { set: 1 } },
    read: { trips: 1, sent: ['gat'], ran: { touch: 1 } },
    unchanged: { trips: 1, sent: ['gat'], ran: { touch: 1 } },
    write: { trips: 2, sent: ['gat', 'replace'], ran: { touch: 1, set: 1 } },
    regenerate: { trips: 2, sent: ['gat', 'add', 'delete'], ran: { touch: 1, set: 1, delete: 1 } }
  }
})

/** Where the suite runs: a store with its facts, apps on it, and how its traffic is counted. */
interface Stand {
  facts: LayoutFacts
  app: (t: Test, options?: Partial<RedisSessionOptions>, more?: (app: FastifyInstance) => void) => Promise<SessionApp>
  traffic: (setup: SessionApp) => TrafficRecorder
  /** what `fn` made the server run */
  ran: (fn: () => Promise<unknown>) => Promise<Record<string, number>>
}

async function redisStand (t: Test, layout: Layout): Promise<Stand> {
  const shared = await privateRedis(t)
  return {
    facts: FACTS[layout](shared.admin),
    app: async (t, options = {}, more = () => {}) => await buildApp(t, { layout, ...options }, (app) => { routes(app); more(app) }, {}, shared),
    traffic: (setup) => recordTraffic(setup.app.sessionStore.client),
    ran: async (fn) => await commandDelta(shared.admin, fn)
  }
}

async function memcachedStand (t: Test): Promise<Stand> {
  const server = await startMemcached()
  t.teardown(async () => await server.stop())
  return {
    facts: memcachedFacts(server),
    app: async (t, options = {}, more = () => {}) => await buildSessionApp(t, { memcached: { servers: [server.address] }, ...options }, (app) => { routes(app); more(app) }),
    traffic: (setup) => recordMemcachedTraffic((setup.app.sessionStore as unknown as SessionStore<MemcachedClient>).client),
    ran: async (fn) => await memcachedDelta([server], fn)
  }
}

function routes (app: FastifyInstance): void {
  counterRoutes(app)
  app.get('/show', async (request) => ({ data: request.session.toJSON(), isNew: request.session.isNew }))
  app.get('/seed', async (request) => {
    request.session.set('keep', 1)
    request.session.set('drop', 2)
    request.session.set('cart', { items: ['a', 'b'] })
    return {}
  })
  app.get('/peek-cart', async (request) => ({ items: (request.session.get('cart') as { items: string[] }).items }))
  app.get('/add-to-cart', async (request) => {
    (request.session.get('cart') as { items: string[] }).items.push('c')
    return {}
  })
  app.get('/login', async (request) => {
    await request.session.regenerate(['keep', 'n'])
    request.session.set('user', 'ada')
    return {}
  })
  app.get('/logout', async (request) => {
    await request.session.destroy()
    return {}
  })
  app.get('/remember', async (request) => {
    request.session.adjustTimeout(5000)
    return {}
  })
  app.get('/forever', async (request) => {
    request.session.adjustTimeout(0)
    return {}
  })
  app.get('/values', async (request) => {
    const s = request.session
    s.set('unicode', 'ünïcødé ☃ 𝄞')
    s.set('nested', { list: [1, { deep: null }], flag: false })
    s.set('zero', 0)
    s.set('empty', '')
    s.set('', 'the empty key')
    s.set('n', 7)
    s.set('drop', undefined)
    s.absent = undefined
    s.cart = { items: ['c'] }
    return {}
  })
  app.get('/big', async (request) => {
    request.session.set('blob', 'x'.repeat(3000))
    return {}
  })
}

// Memcached keeps each session as one item, as the string layout does, behind the same contract
for (const layout of ['string', 'hash', 'bucketed', 'memcached'] as const) {
  t.test(layout === 'memcached' ? 'memcached' : `layout: ${layout}`, async (t) => {
    const stand = layout === 'memcached' ? await memcachedStand(t) : await redisStand(t, layout)
    const { facts, app } = stand
    const newSession = async (setup: SessionApp, url = '/write'): Promise<string> => sessionCookie(await setup.request(url)) as string
    const setup = await app(t)
    const stored = async (cookie: string): Promise<unknown> => await setup.app.sessionStore.get(idOf(cookie))

    t.test('each request sees what the previous one saved', async (t) => {
      const cookie = await newSession(setup)
      for (let n = 2; n <= 4; n++) t.same((await setup.request('/write', cookie)).json(), { n })
      t.same((await setup.request('/read', cookie)).json(), { n: 4, isNew: false })
    })

    t.test('values of every JSON kind round-trip; undefined ones are left out as JSON does', async (t) => {
      const cookie = await newSession(setup, '/seed')
      await setup.request('/values', cookie)
      const expected = {
        keep: 1,
        cart: { items: ['c'] },
        unicode: 'ünïcødé ☃ 𝄞',
        nested: { list: [1, { deep: null }], flag: false },
        zero: 0,
        empty: '',
        '': 'the empty key',
        n: 7
      }
      t.same((await setup.request('/show', cookie)).json().data, expected)
      t.same(await stored(cookie), expected)
    })

    t.test('a session with thousands of keys is saved, changed and emptied', async (t) => {
      const many = await app(t, {}, (app) => {
        app.get('/many/:count', async (request) => {
          const count = Number((request.params as { count: string }).count)
          request.session.clear()
          for (let i = 0; i < count; i++) request.session.set(`key${i}`, i)
          return {}
        })
      })
      const cookie = sessionCookie(await many.request('/many/9000')) as string
      t.equal(Object.keys(await stored(cookie) as object).length, 9000)
      await many.request('/many/4500', cookie)
      t.equal(Object.keys(await stored(cookie) as object).length, 4500)
      await many.request('/many/0', cookie)
      t.same(await stored(cookie), {})
    })

    t.test('round trips and Redis commands per request', async (t) => {
      const traffic = stand.traffic(setup)
      // the first calls also register the Lua scripts on this server (EVALSHA → NOSCRIPT → EVAL)
      const warm = await newSession(setup)
      await setup.request('/write', warm)
      await setup.request('/login', warm)
      const measure = async (url: string, cookie?: string): Promise<Cost> => {
        traffic.reset()
        const ran = await stand.ran(async () => await setup.request(url, cookie))
        return { trips: traffic.roundTrips, sent: traffic.commands, ran }
      }
      t.same(await measure('/write'), facts.costs.fresh, 'brand-new session written')
      t.same(await measure('/read', await newSession(setup)), facts.costs.read, 'read-only, expiry slide included')
      t.same(await measure('/peek-cart', await newSession(setup, '/seed')), facts.costs.unchanged, 'a nested value read but not changed')
      t.same(await measure('/write', await newSession(setup)), facts.costs.write, 'write')
      t.same(await measure('/login', await newSession(setup)), facts.costs.regenerate, 'regenerate and write')
      t.same(await measure('/read'), { trips: 0, sent: [], ran: {} }, 'no cookie')
    })

    t.test('a nested value changed in place is saved without changed()', async (t) => {
      const cookie = await newSession(setup, '/seed')
      await setup.request('/add-to-cart', cookie)
      t.same((await setup.request('/peek-cart', cookie)).json(), { items: ['a', 'b', 'c'] })
    })

    t.test('regenerate: a new id with the kept keys, the old record deleted', async (t) => {
      const cookie = await newSession(setup, '/seed')
      const renewed = sessionCookie(await setup.request('/login', cookie)) as string
      t.not(idOf(renewed), idOf(cookie))
      t.same(await stored(renewed), { keep: 1, user: 'ada' })
      t.equal(await stored(cookie), null)
      t.equal((await setup.request('/read', cookie)).json().isNew, true, 'the old cookie gets a fresh session')
    })

    t.test('destroy deletes the record and expires the cookie', async (t) => {
      const cookie = await newSession(setup)
      const response = await setup.request('/logout', cookie)
      t.match(response.headers['set-cookie'], /^session=; .*Max-Age=0/)
      t.equal(await stored(cookie), null)
      await setup.app.sessionStore.destroy(idOf(await newSession(setup)))
      await setup.app.sessionStore.ping()
    })

    t.test('a slower request never brings back a session destroyed or regenerated meanwhile', async (t) => {
      for (const ending of ['/logout', '/login']) {
        let release = (): void => {}
        const gate = new Promise<void>((resolve) => { release = resolve })
        const racing = await app(t, {}, (app) => {
          app.get('/slow-write', async (request) => {
            await gate
            request.session.set('late', true)
            return {}
          })
        })
        const cookie = await newSession(racing)
        const slow = racing.request('/slow-write', cookie)
        await sleep(20)
        await racing.request(ending, cookie)
        release()
        t.equal(sessionCookie(await slow), undefined, `${ending}: the slow save is dropped without a cookie`)
        t.equal(await stored(cookie), null, `${ending}: the old record stays dead`)
      }
    })

    t.test('the expiry slides on every read', async (t) => {
      const cookie = await newSession(setup)
      await facts.shorten(idOf(cookie))
      t.ok(await facts.remaining(idOf(cookie)) <= 10)
      await setup.request('/read', cookie)
      t.ok(await facts.remaining(idOf(cookie)) > 1190, 'back to the full timeout')
    })

    t.test('an expired session is gone, and replaced when the client writes again', async (t) => {
      const cookie = await newSession(setup)
      await facts.expireNow(idOf(cookie))
      t.same((await setup.request('/read', cookie)).json(), { n: null, isNew: true })
      t.equal(await stored(cookie), null)
      const renewed = sessionCookie(await setup.request('/write', cookie)) as string
      t.not(idOf(renewed), idOf(cookie))
      t.same(await stored(renewed), { n: 1 })
    })

    t.test('adjustTimeout: the session keeps its own timeout, also when it slides; 0 never expires', async (t) => {
      const cookie = await newSession(setup)
      await setup.request('/remember', cookie)
      t.ok(Math.abs(await facts.remaining(idOf(cookie)) - 5000) <= 1)
      await facts.shorten(idOf(cookie))
      await setup.request('/read', cookie)
      // the read does not wait for the slide to its own timeout (sent right after it)
      await waitFor(async () => Math.abs(await facts.remaining(idOf(cookie)) - 5000) <= 1, { what: 'the slide to its own timeout' })
      t.pass('slides to its own timeout')
      await setup.request('/forever', cookie)
      t.equal(await facts.remaining(idOf(cookie)), -1)
      await setup.request('/write', cookie)
      t.equal(await facts.remaining(idOf(cookie)), -1, 'and stays so')
      t.same((await setup.request('/read', cookie)).json(), { n: 2, isNew: false })
    })

    t.test('timeout 0: sessions never expire', async (t) => {
      const forever = await app(t, { timeout: 0 })
      const cookie = await newSession(forever)
      await forever.request('/read', cookie)
      t.equal(await facts.remaining(idOf(cookie)), -1)
    })

    t.test('LRU mode: nothing expires in Redis, the stored expiry is enforced', async (t) => {
      const lru = await app(t, { redisTtl: false, timeout: 1 })
      const cookie = await newSession(lru)
      t.equal(await facts.remaining(idOf(cookie)), -1)
      t.same((await lru.request('/read', cookie)).json(), { n: 1, isNew: false })
      const renewed = sessionCookie(await lru.request('/login', cookie)) as string
      t.same(await lru.app.sessionStore.get(idOf(renewed)), { n: 1, user: 'ada' })
      t.equal(await lru.app.sessionStore.get(idOf(cookie)), null)
      await sleep(1100)
      t.same((await lru.request('/read', renewed)).json(), { n: null, isNew: true }, 'expired by its stored time')
      await lru.request('/logout', sessionCookie(await lru.request('/write')))
    })

    t.test('maxSize: a larger session is refused and nothing is written', async (t) => {
      const small = await app(t, { maxSize: 2000 })
      const cookie = await newSession(small)
      const response = await small.request('/big', cookie)
      t.equal(response.statusCode, 500)
      t.equal(response.json().code, 'FST_RS_SESSION_TOO_LARGE')
      t.same(await stored(cookie), { n: 1 })
    })

    t.test('an undecodable record is a 500 FST_RS_DECODE_FAILED', async (t) => {
      const cookie = await newSession(setup)
      await facts.corrupt(idOf(cookie))
      const response = await setup.request('/read', cookie)
      t.equal(response.statusCode, 500)
      t.equal(response.json().code, 'FST_RS_DECODE_FAILED')
    })

    t.test(`20 concurrent requests each setting a different key: ${layout === 'hash' ? 'all survive' : 'updates are lost'}`, async (t) => {
      const requests = 20
      let arrived = 0
      let release = (): void => {}
      const gate = new Promise<void>((resolve) => { release = resolve })
      const racing = await app(t, {}, (app) => {
        app.get('/set/:key', async (request) => {
          // every request has loaded the session before any of them saves
          if (++arrived === requests) release()
          await gate
          request.session.set((request.params as { key: string }).key, true)
          return {}
        })
      })
      const cookie = await newSession(racing)
      await Promise.all(Array.from({ length: requests }, async (_, i) => await racing.request(`/set/k${i}`, cookie)))
      const survivors = Object.keys(await stored(cookie) as object).filter((key) => key.startsWith('k')).length
      if (layout === 'hash') t.equal(survivors, requests, 'field-level writes keep every change')
      else t.ok(survivors < requests, `whole-session writes keep ${survivors} of ${requests}`)
    })
  })
}

t.test('replicas: a save waits until enough replicas have it', async (t) => {
  const { redis, admin } = await privateRedis(t)
  const replica = await startRedis({ config: [`replicaof ${redis.host} ${redis.port}`] })
  t.teardown(async () => await replica.stop())
  const replicaAdmin = replica.admin()
  t.teardown(() => replicaAdmin.disconnect())
  await waitFor(async () => (await replicaAdmin.info('replication')).includes('master_link_status:up'), { what: 'replica in sync' })
  for (const layout of ['string', 'hash', 'bucketed'] as const) {
    const enough = await buildApp(t, { layout, replicas: { count: 1, timeout: 1000 } }, routes, {}, { redis, admin })
    const cookie = sessionCookie(await enough.request('/write')) as string
    t.same((await enough.request('/write', cookie)).json(), { n: 2 }, `${layout}: acknowledged by the one replica`)
    const tooMany = await buildApp(t, { layout, replicas: { count: 2, timeout: 50 } }, routes, {}, { redis, admin })
    const response = await tooMany.request('/write', cookie)
    t.equal(response.statusCode, 503, `${layout}: 2 replicas asked, 1 acknowledged`)
    t.equal(response.json().code, 'FST_RS_STORE_UNAVAILABLE')
  }
})

t.test('on Redis Cluster: every layout keeps a session\'s keys in one slot', async (t) => {
  const cluster = await startCluster()
  t.teardown(async () => await cluster.stop())
  const admin = cluster.servers[0].admin()
  t.teardown(() => admin.disconnect())
  for (const layout of ['string', 'hash', 'bucketed'] as const) {
    const setup = await buildApp(t, { layout, url: undefined, cluster: { nodes: cluster.nodes } }, routes, {}, { redis: cluster.servers[0], admin })
    const cookie = sessionCookie(await setup.request('/seed')) as string
    t.same((await setup.request('/write', cookie)).json(), { n: 1 }, layout)
    // the new and the old id usually live in different slots, so they are never in one script
    const renewed = sessionCookie(await setup.request('/login', cookie)) as string
    t.same(await setup.app.sessionStore.get(idOf(renewed)), { keep: 1, n: 1, user: 'ada' }, `${layout}: regenerated`)
    t.equal(await setup.app.sessionStore.get(idOf(cookie)), null)
    await setup.request('/logout', renewed)
    t.equal(await setup.app.sessionStore.get(idOf(renewed)), null, `${layout}: destroyed`)
  }
})
