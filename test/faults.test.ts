import t, { type Test } from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import Fastify, { type FastifyInstance } from 'fastify'
import redisSession, { type RedisSessionOptions } from '../lib/index.js'
import { connect } from '../lib/connection.js'
import { freePort, makeTlsFiles, startRedis, waitFor, type RedisServer } from './helpers/index.js'
import { SECRET } from './helpers/app.js'
import { checkOutcomes, expectCleanExit, hammer, login, userRoutes } from './helpers/deployment.js'

const commandTimeout = 300
// a request may also wait for Fastify and the event loop of a busy test machine
const limit = commandTimeout + 700

async function faultyApp (t: Test, redis: RedisServer, options: Partial<RedisSessionOptions> = {}): Promise<FastifyInstance> {
  const app = Fastify()
  t.teardown(async () => await app.close())
  await app.register(redisSession, { secret: SECRET, url: redis.url, commandTimeout, ...options })
  userRoutes(app)
  app.get('/health', { config: { session: false } }, async () => ({ ok: true }))
  return app
}

async function loggedIn (app: FastifyInstance, users = 6): Promise<Map<string, string>> {
  const cookies = new Map<string, string>()
  for (let i = 0; i < users; i++) cookies.set(`user${i}`, await login(app, `user${i}`))
  return cookies
}

t.test('Redis stopped: 503s within commandTimeout, the app stays up; started again: sessions work without a restart', async (t) => {
  const redis = await startRedis()
  t.teardown(async () => await redis.stop())
  const app = await faultyApp(t, redis)
  const cookies = await loggedIn(app)
  await redis.kill()

  const down = await hammer(app, cookies, '/visit', async () => await sleep(1000))
  checkOutcomes(t, down, limit)
  t.same(down.filter((o) => o.status !== 503), [], `all ${down.length} requests got a 503`)
  t.equal((await app.inject('/health')).statusCode, 200, 'routes without sessions keep working')
  t.equal((await app.inject('/login/ada')).statusCode, 503, 'a new session cannot be saved either')

  await redis.revive()
  const started = performance.now()
  await waitFor(async () => (await app.inject('/login/ada')).statusCode === 200, { what: 'a login to succeed again', timeout: 5000 })
  t.comment(`sessions work again ${Math.round(performance.now() - started)} ms after Redis is back`)
  const up = await hammer(app, cookies, '/whoami', async () => await sleep(200))
  t.same(up.filter((o) => o.status !== 200 || o.seen !== null), [], 'the data died with the server (no persistence): fresh sessions')
  const cookie = await login(app, 'bob')
  t.same((await app.inject({ url: '/visit', headers: { cookie } })).json(), { user: 'bob', visits: 1 })
})

t.test('Redis paused (SIGSTOP): 503s within commandTimeout; resumed: every session, none mixed up', async (t) => {
  const redis = await startRedis()
  t.teardown(async () => await redis.stop())
  const app = await faultyApp(t, redis)
  const cookies = await loggedIn(app)
  redis.pause()
  t.teardown(() => redis.resume())

  const paused = await hammer(app, cookies, '/visit', async () => await sleep(800))
  checkOutcomes(t, paused, limit)
  t.same(paused.filter((o) => o.status !== 503), [], `all ${paused.length} requests got a 503`)

  // the replies to the timed-out commands arrive now and must not be taken for newer ones
  redis.resume()
  const resumed = await hammer(app, cookies, '/whoami', async () => await sleep(300))
  checkOutcomes(t, resumed, limit)
  const settled = resumed.filter((o) => o.status === 200)
  t.ok(settled.length > 0, `${settled.length} of ${resumed.length} requests succeeded`)
  t.same(settled.filter((o) => o.seen !== o.user), [], 'each got its own session back')
})

t.test('CLIENT PAUSE: 503s within commandTimeout, then every session back', async (t) => {
  const redis = await startRedis()
  t.teardown(async () => await redis.stop())
  const admin = redis.admin()
  t.teardown(() => admin.disconnect())
  const app = await faultyApp(t, redis)
  const cookies = await loggedIn(app)
  const until = Date.now() + 1000
  await admin.call('CLIENT', 'PAUSE', '1000', 'ALL')

  const paused = await hammer(app, cookies, '/visit', async () => await sleep(until - Date.now() - 300))
  checkOutcomes(t, paused, limit)
  t.same(paused.filter((o) => o.status !== 503), [], `all ${paused.length} requests got a 503`)

  await sleep(until - Date.now() + 50)
  const after = await hammer(app, cookies, '/whoami', async () => await sleep(300))
  checkOutcomes(t, after, limit)
  t.same(after.filter((o) => o.status !== 200 || o.seen !== o.user), [], 'each got its own session back')
})

t.test('app.close() leaves nothing open: the process exits by itself', async (t) => {
  const [redis, tls] = await Promise.all([startRedis(), makeTlsFiles()])
  const secure = await startRedis({ tls, tlsOnly: true })
  t.teardown(async () => {
    await Promise.all([redis.stop(), secure.stop()])
    await tls.remove()
  })
  const unreachable = { host: '127.0.0.1', port: await freePort(), commandTimeout }
  const shapes = [
    { url: redis.url },
    { url: secure.url, tls: { ca: tls.pem.ca } },
    unreachable,
    { ...unreachable, tls: { ca: tls.pem.ca } }
  ]
  t.same(await expectCleanExit(shapes), [200, 200, 503, 503], 'url, TLS, Redis unreachable, unreachable over TLS')
})

t.test('without any connection option the client goes to 127.0.0.1:6379', async (t) => {
  const { client, owned } = connect({ connectTimeout: 100, commandTimeout: 100 })
  client.on('error', () => {})
  t.teardown(() => client.disconnect())
  t.ok(owned)
  t.match(client.options, { host: '127.0.0.1', port: 6379 })
})
