import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import type { Redis } from 'ioredis'
import redisSession from '../lib/index.js'
import { commandDelta, startSentinelGroup, waitFor } from './helpers/index.js'
import { SECRET } from './helpers/app.js'
import { login, userRoutes } from './helpers/deployment.js'

// The local cache across a Sentinel failover: both instances drop what they cached and turn
// tracking on again on the new master, where a change by one reaches the other as before.
const group = await startSentinelGroup()
t.teardown(async () => await group.stop())

async function cachedApp (t: Test): Promise<FastifyInstance> {
  const app = Fastify()
  t.teardown(async () => await app.close())
  await app.register(redisSession, { secret: SECRET, sentinel: { sentinels: group.sentinels, name: group.name }, cache: true })
  userRoutes(app)
  app.get('/visits', async (request) => ({ visits: request.session.get('visits') ?? null }))
  return app
}

t.test('a failover empties the cache; tracking comes back on the new master', async (t) => {
  const [a, b] = [await cachedApp(t), await cachedApp(t)]
  const cookie = await login(a, 'ada')
  const visits = async (app: FastifyInstance): Promise<number | null> => {
    const response = await app.inject({ url: '/visits', headers: { cookie } })
    if (response.statusCode !== 200) throw new Error(`status ${response.statusCode}`)
    return response.json().visits
  }
  await a.inject({ url: '/visit', headers: { cookie } })
  /** Until a read of B's sends the master nothing: B serves the session from its cache. */
  const cachedByB = async (admin: Redis): Promise<boolean> => await waitFor(async () => {
    await visits(b)
    return Object.keys(await commandDelta(admin, async () => await visits(b))).length === 0
  }, { what: 'B to serve the session from its cache' })
  t.equal(await visits(b), 1)
  let admin = group.master.admin()
  // B's first read is not cached when the invalidation of A's write reaches B after its reply
  // (the race the tickets guard against): a later read is
  await cachedByB(admin)
  admin.disconnect()

  await group.failover()
  admin = group.master.admin()
  t.teardown(() => admin.disconnect())
  // B reads from the new master until tracking is on there: then from its cache again
  await cachedByB(admin)
  await waitFor(async () => (await a.inject({ url: '/visit', headers: { cookie } })).statusCode === 200, { what: 'A to write on the new master' })
  await waitFor(async () => await visits(b) === 2, { what: "B to see A's write" })
  for (let i = 0; i < 5; i++) t.equal(await visits(b), 2, 'and never the old version after')
})
