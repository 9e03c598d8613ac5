import t from 'tap'
import Fastify from 'fastify'
import redisSession from '../lib/index.js'
import { counterRoutes, SECRET, sessionCookie } from './helpers/app.js'
import { memcachedDelta, startMemcached } from './helpers/memcached-server.js'

t.test('smoke', async (t) => {
  const server = await startMemcached()
  t.teardown(async () => await server.stop())
  const app = Fastify()
  await app.register(redisSession, { secret: SECRET, memcached: { servers: [server.address] } })
  counterRoutes(app)
  t.teardown(async () => await app.close())
  const first = await app.inject('/write')
  const cookie = sessionCookie(first) as string
  t.ok(cookie)
  const ran = await memcachedDelta([server], async () => await app.inject({ url: '/read', headers: { cookie } }))
  t.same(ran, { get: 1, touch: 1 })
  const w = await memcachedDelta([server], async () => t.same((await app.inject({ url: '/write', headers: { cookie } })).json(), { n: 2 }))
  t.same(w, { get: 1, touch: 1, set: 1 })
})
