import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import redisSession from '../lib/index.js'
import { startCluster } from './helpers/index.js'
import { buildApp, idOf, recordTraffic, SECRET, sessionCookie } from './helpers/app.js'

function routes (app: FastifyInstance): void {
  app.get('/login/:user', async (request) => {
    await request.session.regenerate()
    request.session.setOwner((request.params as { user: string }).user)
    request.session.set('since', Date.now())
    return {}
  })
  app.get('/become/:user', async (request) => {
    request.session.setOwner((request.params as { user: string }).user)
    return {}
  })
  app.get('/bad-owner', async (request) => {
    request.session.setOwner('')
    return {}
  })
  app.get('/read', async (request) => ({ since: request.session.get('since') ?? null }))
  app.get('/write', async (request) => {
    request.session.set('n', (request.session.get('n') as number | undefined ?? 0) + 1)
    return {}
  })
  app.get('/regenerate', async (request) => {
    await request.session.regenerate(request.session.keys())
    return {}
  })
  app.get('/regenerate-afresh', async (request) => {
    await request.session.regenerate()
    request.session.set('visitor', true)
    return {}
  })
  app.get('/logout', async (request) => {
    await request.session.destroy()
    return {}
  })
}

const ownerKey = (user: string): string => 'sess:owner:' + Buffer.from(user).toString('base64url')
/** The ids `listByOwner` lists (test/devices.test.ts checks the rest of what it tells). */
const idsOf = async (app: FastifyInstance, owner: string): Promise<string[]> => (await app.sessionStore.listByOwner(owner)).map(({ id }) => id)

for (const layout of ['string', 'hash', 'bucketed'] as const) {
  t.test(`log out everywhere, ${layout} layout`, async (t) => {
    const { app, admin, request } = await buildApp(t, { layout }, routes)
    const store = app.sessionStore
    const login = async (user: string, cookie?: string): Promise<string> =>
      sessionCookie(await request('/login/' + user, cookie)) as string

    t.test('every session of an owner is listed and ended', async (t) => {
      const laptop = await login('ada')
      const phone = await login('ada')
      const other = await login('bob')
      t.same((await idsOf(app, 'ada')).sort(), [idOf(laptop), idOf(phone)].sort())
      t.equal(await store.destroyByOwner('ada'), 2)
      t.equal((await request('/read', laptop)).json().since, null, 'the laptop is logged out')
      t.equal((await request('/read', phone)).json().since, null, 'the phone is logged out')
      t.not((await request('/read', other)).json().since, null, 'bob is not')
      t.same(await store.listByOwner('ada'), [])
      t.equal(await admin.scard(ownerKey('ada')), 0, 'nothing is left in the index')
    })

    t.test('the index costs no round trip of its own', async (t) => {
      const traffic = recordTraffic(store.client)
      const anonymous = sessionCookie(await request('/write')) as string
      await request('/read', anonymous) // loads the Lua scripts on this server
      traffic.reset()
      const cookie = await login('cyd', anonymous)
      t.equal(traffic.roundTrips, 2, 'login: load, then save + delete old + index in one round trip')
      t.ok(traffic.commands.includes('sadd'))
      await new Promise((resolve) => setTimeout(resolve, 50)) // the index prune that follows a login
      traffic.reset()
      await request('/read', cookie)
      t.same({ trips: traffic.roundTrips, index: traffic.commands.filter((c) => c.startsWith('s')) }, { trips: 1, index: [] }, 'a read never touches the index')
      traffic.reset()
      await request('/write', cookie)
      t.same({ trips: traffic.roundTrips, index: traffic.commands.filter((c) => c === 'sadd' || c === 'srem') }, { trips: 2, index: [] }, 'nor does a write by the same owner')
    })

    t.test('regenerate and destroy keep the index exact', async (t) => {
      const first = await login('dee')
      const second = sessionCookie(await request('/regenerate', first)) as string
      t.same(await admin.smembers(ownerKey('dee')), [idOf(second)], 'the new id replaced the old one')
      await request('/logout', second)
      t.same(await admin.smembers(ownerKey('dee')), [], 'destroy leaves the index at once')
    })

    t.test('regenerate() without keep leaves the owner behind (a logout)', async (t) => {
      const first = await login('ida')
      const second = sessionCookie(await request('/regenerate-afresh', first)) as string
      t.not(idOf(second), idOf(first))
      t.same(await admin.smembers(ownerKey('ida')), [], 'the new session is no longer filed under ida')
      t.same(await store.listByOwner('ida'), [])
    })

    t.test('a session handed to another owner moves index', async (t) => {
      const cookie = await login('eve')
      await request('/become/fay', cookie)
      t.same(await store.listByOwner('eve'), [])
      t.same(await idsOf(app, 'fay'), [idOf(cookie)])
    })

    t.test('expired sessions leave the index at the owner\'s next login', async (t) => {
      const gone = await login('jo')
      await store.destroy(idOf(gone))
      const kept = await login('jo')
      await new Promise((resolve) => setTimeout(resolve, 50)) // the prune runs after the save
      t.same(await admin.smembers(ownerKey('jo')), [idOf(kept)])
    })

    t.test('expired sessions leave the index when it is listed', async (t) => {
      const kept = await login('gus')
      const gone = await login('gus')
      await new Promise((resolve) => setTimeout(resolve, 200)) // the prune after the login, or it would take the entry below
      await store.destroy(idOf(gone)) // as if it had expired: the record goes, the index entry stays
      t.equal(await admin.scard(ownerKey('gus')), 2)
      t.same(await idsOf(app, 'gus'), [idOf(kept)])
      t.equal(await admin.scard(ownerKey('gus')), 1)
    })

    t.test('setOwner takes a non-empty string', async (t) => {
      const response = await request('/bad-owner')
      t.equal(response.statusCode, 500)
      t.equal(sessionCookie(response), undefined)
    })
  })
}

t.test('a record that no longer decodes is still ended by destroyByOwner', async (t) => {
  const { app, admin, request } = await buildApp(t, {}, routes)
  const broken = sessionCookie(await request('/login/hal')) as string
  const key = 'sess:' + idOf(broken)
  const stored = await admin.get(key) as string
  await admin.set(key, stored.slice(0, stored.indexOf('|') + 1) + '{broken')
  // and a key of another type where a record belongs (GET on a list: WRONGTYPE)
  const listed = sessionCookie(await request('/login/hal')) as string
  await new Promise((resolve) => setTimeout(resolve, 50)) // the index prune that follows a login
  await admin.del('sess:' + idOf(listed))
  await admin.lpush('sess:' + idOf(listed), 'not a session')
  t.same(await idsOf(app, 'hal'), [idOf(broken)], 'listed while its header reads; the list is not')
  t.equal(await app.sessionStore.destroyByOwner('hal'), 2)
  t.equal(await admin.exists(key, 'sess:' + idOf(listed)), 0)
})

t.test('a Redis error while listing rejects with FST_RS_STORE_UNAVAILABLE', async (t) => {
  const { app, admin, request } = await buildApp(t, {}, routes)
  await request('/login/ida')
  await new Promise((resolve) => setTimeout(resolve, 50)) // the index prune that follows a login
  // the index can be read, the records cannot: GET fails with NOPERM (this server is the test's own)
  await admin.call('ACL', 'SETUSER', 'default', '-get')
  await t.rejects(app.sessionStore.listByOwner('ida'), { code: 'FST_RS_STORE_UNAVAILABLE' })
  const response = await request('/login/ida')
  t.equal(response.statusCode, 200, 'a failing background prune after login does not matter to the login')
  await new Promise((resolve) => setTimeout(resolve, 50))
  await admin.call('ACL', 'SETUSER', 'default', '+get')
  t.equal(await admin.scard(ownerKey('ida')), 2, 'the entries wait for a listing that works')
})

t.test('owners on Redis Cluster: sessions and the index live in different slots', async (t) => {
  const cluster = await startCluster()
  t.teardown(async () => await cluster.stop())
  const app = Fastify()
  t.teardown(async () => await app.close())
  await app.register(redisSession, { secret: SECRET, cluster: { nodes: cluster.nodes } })
  routes(app)
  const cookies: string[] = []
  for (let i = 0; i < 6; i++) {
    const response = await app.inject('/login/ivy')
    t.equal(response.statusCode, 200)
    cookies.push(sessionCookie(response) as string)
  }
  t.equal((await app.sessionStore.listByOwner('ivy')).length, 6)
  t.equal(await app.sessionStore.destroyByOwner('ivy'), 6)
  for (const cookie of cookies) {
    t.equal((await app.inject({ url: '/read', headers: { cookie } })).json().since, null)
  }
})
