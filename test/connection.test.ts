import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import redisSession, { type RedisSessionOptions } from '../lib/index.js'
import { CookieSigner } from '../lib/cookie.js'
import { generateId } from '../lib/id.js'
import { freePort, startRedis } from './helpers/index.js'
import { SECRET, idOf, sessionCookie } from './helpers/app.js'

function routes (app: FastifyInstance): void {
  app.get('/write', async (request) => {
    request.session.set('n', (request.session.get('n') as number | undefined ?? 0) + 1)
    return { n: request.session.get('n') }
  })
  app.get('/plain', async () => ({ ok: true }))
}

async function appWith (t: Test, options: Partial<RedisSessionOptions>): Promise<FastifyInstance> {
  const app = Fastify()
  t.teardown(async () => await app.close())
  await app.register(redisSession, { secret: SECRET, ...options })
  routes(app)
  return app
}

t.test('url with password and database', async (t) => {
  const redis = await startRedis({ password: 'pässword' })
  t.teardown(async () => await redis.stop())
  const app = await appWith(t, { url: `redis://:${encodeURIComponent('pässword')}@127.0.0.1:${redis.port}/3` })
  const cookie = sessionCookie(await app.inject('/write')) as string
  const admin = redis.admin({ db: 3 })
  t.teardown(() => admin.disconnect())
  t.equal(await admin.exists('sess:' + idOf(cookie)), 1)
})

t.test('host, port, db and an ACL user limited to the session keys', async (t) => {
  const redis = await startRedis({
    acl: ['user default on nopass ~* &* +@all', 'user app on >app-secret ~sess:* resetchannels +@all -@dangerous']
  })
  t.teardown(async () => await redis.stop())
  const app = await appWith(t, { host: '127.0.0.1', port: redis.port, db: 0, username: 'app', password: 'app-secret' })
  const cookie = sessionCookie(await app.inject('/write')) as string
  t.same((await app.inject({ url: '/write', headers: { cookie } })).json(), { n: 2 })
})

t.test('a wrong password fails register with FST_RS_CONNECTION_REJECTED', async (t) => {
  const redis = await startRedis({ password: 'right' })
  t.teardown(async () => await redis.stop())
  const app = Fastify()
  t.teardown(async () => await app.close())
  await t.rejects(
    async () => await app.register(redisSession, { secret: SECRET, url: `redis://:wrong@127.0.0.1:${redis.port}` }).ready(),
    { code: 'FST_RS_CONNECTION_REJECTED' }
  )
})

t.test('unix socket', async (t) => {
  const redis = await startRedis({ unixSocket: true })
  t.teardown(async () => await redis.stop())
  const app = await appWith(t, { socketPath: redis.socketPath })
  t.equal((await app.inject('/write')).statusCode, 200)
  t.equal(app.sessionStore.client.status, 'ready')
})

t.test('a client the user owns is used and never closed; our own is', async (t) => {
  const redis = await startRedis()
  t.teardown(async () => await redis.stop())
  const client = new Redis(redis.port)
  t.teardown(() => client.disconnect())
  const app = Fastify()
  await app.register(redisSession, { secret: SECRET, client })
  routes(app)
  t.equal((await app.inject('/write')).statusCode, 200)
  t.equal(app.sessionStore.client, client)
  await app.close()
  t.equal(client.status, 'ready', 'still open after app.close()')

  const owned = Fastify()
  await owned.register(redisSession, { secret: SECRET, url: redis.url })
  const ownClient = owned.sessionStore.client
  await owned.close()
  t.equal(ownClient.status, 'end', 'the client the plugin created is closed')
})

t.test('Redis unreachable: the app starts, session requests get a 503 within commandTimeout', async (t) => {
  const port = await freePort()
  const started = Date.now()
  const app = await appWith(t, { port, commandTimeout: 300, connectTimeout: 300 })
  await app.ready()
  t.ok(Date.now() - started < 3000, 'register did not wait for Redis')
  t.equal((await app.inject('/plain')).statusCode, 200, 'requests without a cookie need no Redis')

  const cookie = 'session=' + new CookieSigner([SECRET]).sign(generateId())
  const before = Date.now()
  const response = await app.inject({ url: '/write', headers: { cookie } })
  t.equal(response.statusCode, 503)
  t.equal(response.json().code, 'FST_RS_STORE_UNAVAILABLE')
  t.ok(Date.now() - before < 1500, 'no longer than commandTimeout, give or take')
  await t.rejects(app.sessionStore.ping(), { code: 'FST_RS_STORE_UNAVAILABLE' })
  const fresh = await app.inject('/write')
  t.equal(fresh.statusCode, 503, 'a new session cannot be saved either')
})

t.test('Redis restarted: sessions work again without restarting the app', async (t) => {
  const redis = await startRedis()
  t.teardown(async () => await redis.stop())
  const app = await appWith(t, { url: redis.url, commandTimeout: 500 })
  const cookie = sessionCookie(await app.inject('/write')) as string
  await redis.restart()
  let response = await app.inject({ url: '/write', headers: { cookie } })
  for (let tries = 0; response.statusCode === 503 && tries < 20; tries++) {
    await new Promise((resolve) => setTimeout(resolve, 100))
    response = await app.inject({ url: '/write', headers: { cookie } })
  }
  t.equal(response.statusCode, 200)
  t.same(response.json(), { n: 1 }, 'the data died with the server (no persistence): a new session starts')
  t.not(idOf(sessionCookie(response) as string), idOf(cookie), 'under a new id')
})
