import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { commandDelta } from './helpers/index.js'
import { buildApp, idOf, recordTraffic, sessionCookie, type TestApp } from './helpers/app.js'

// DESIGN.md's budget for the string layout: read = 1 round trip (expiry slide included),
// write = 2, brand-new session written = 1, regenerate + write = 2; no valid cookie = nothing.
function routes (app: FastifyInstance): void {
  app.get('/read', async (request) => ({ views: request.session.get('views') ?? null }))
  app.get('/write', async (request) => {
    const views = (request.session.get('views') as number | undefined ?? 0) + 1
    request.session.set('views', views)
    return { views }
  })
  app.get('/login', async (request) => {
    await request.session.regenerate()
    request.session.set('user', 'ada')
    return {}
  })
  app.get('/untouched', async () => ({ ok: true }))
}

async function newSession (setup: TestApp): Promise<string> {
  const response = await setup.request('/write')
  return sessionCookie(response) as string
}

t.test('round trips and Redis commands per request', async (t) => {
  const setup = await buildApp(t, {}, routes)
  const traffic = recordTraffic(setup.app.sessionStore.client)
  // one session stored before anything is measured: the untouched requests below must add nothing beside it
  await setup.request('/read', await newSession(setup))
  const measure = async (url: string, cookie?: string): Promise<{ trips: number, sent: string[], ran: Record<string, number> }> => {
    traffic.reset()
    const ran = await commandDelta(setup.admin, async () => await setup.request(url, cookie))
    return { trips: traffic.roundTrips, sent: traffic.commands, ran }
  }

  t.test('no cookie, session untouched: nothing reaches Redis and no cookie is set', async (t) => {
    traffic.reset()
    const ran = await commandDelta(setup.admin, async () => {
      const response = await setup.request('/untouched')
      t.equal(response.headers['set-cookie'], undefined)
    })
    t.same(ran, {})
    t.equal(traffic.roundTrips, 0)
  })

  t.test('no cookie, session only read: nothing stored', async (t) => {
    t.same(await measure('/read'), { trips: 0, sent: [], ran: {} })
    t.equal(await setup.admin.dbsize(), 1, 'only the session stored before measuring exists')
  })

  t.test('brand-new session written: one SET', async (t) => {
    t.same(await measure('/write'), { trips: 1, sent: ['set'], ran: { set: 1 } })
  })

  t.test('read-only with a valid cookie: one round trip that also slides the expiry', async (t) => {
    const cookie = await newSession(setup)
    await setup.admin.expire('sess:' + idOf(cookie), 10)
    t.same(await measure('/read', cookie), { trips: 1, sent: ['getex'], ran: { getex: 1 } })
    t.ok(await setup.admin.ttl('sess:' + idOf(cookie)) > 1000, 'TTL is back to the full timeout')
  })

  t.test('write with a valid cookie: load and one conditional SET', async (t) => {
    const cookie = await newSession(setup)
    t.same(await measure('/write', cookie), { trips: 2, sent: ['getex', 'set'], ran: { getex: 1, set: 1 } })
  })

  t.test('regenerate and write: the old record is deleted in the round trip of the save', async (t) => {
    const cookie = await newSession(setup)
    const result = await measure('/login', cookie)
    t.same(result, { trips: 2, sent: ['getex', 'set', 'del'], ran: { getex: 1, set: 1, del: 1 } })
    t.equal(await setup.admin.exists('sess:' + idOf(cookie)), 0)
  })

  t.test('a tampered or unsigned cookie costs nothing', async (t) => {
    const cookie = await newSession(setup)
    const tampered = cookie.slice(0, -2) + (cookie.endsWith('AA') ? 'BB' : 'AA')
    for (const bad of [tampered, 'session=' + idOf(cookie), 'session=garbage', 'session=']) {
      t.same(await measure('/read', bad), { trips: 0, sent: [], ran: {} }, bad)
    }
  })
})
