// Issue 11, point 7: while the connection is known to be down, requests get their 503 at once,
// saying which connection is down and why, and the log says it once per outage.
import t from 'tap'
import Fastify from 'fastify'
import redisSession, { errorCodes } from '../lib/index.js'
import { startRedis, waitFor } from './helpers/index.js'
import { counterRoutes, SECRET, sessionCookie } from './helpers/app.js'

// long, so that a request that waited for it could not pass for one answered at once
const commandTimeout = 5000

t.test('Redis down: 503 at once naming host:port and the reason, logged once; back: logged once, sessions work', async (t) => {
  const redis = await startRedis()
  t.teardown(async () => await redis.stop())
  const logs: Array<{ level: number, msg: string }> = []
  const app = Fastify({ logger: { level: 'info', stream: { write: (line: string) => logs.push(JSON.parse(line)) } } })
  t.teardown(async () => await app.close())
  app.register(redisSession, { secret: SECRET, url: redis.url, commandTimeout })
  counterRoutes(app)
  app.get('/ping', { config: { session: false } }, async () => { await app.sessionStore.ping(); return {} })
  // the README's handler that keeps each 503 out of the error log
  app.setErrorHandler((err, request, reply) => {
    if (err instanceof errorCodes.FST_RS_STORE_UNAVAILABLE) {
      return reply.code(503).header('retry-after', '1')
        .send({ statusCode: 503, code: err.code, error: 'Service Unavailable', message: err.message })
    }
    throw err
  })
  await app.ready()
  const cookie = sessionCookie(await app.inject('/write')) as string

  await redis.kill()
  await waitFor(async () => (await app.inject({ url: '/read', headers: { cookie } })).statusCode === 503 &&
    (await app.inject({ url: '/read', headers: { cookie } })).json().message.includes('ECONNREFUSED'),
  { what: 'the client to notice the outage', timeout: 5000 })

  for (const [what, request] of [
    ['a read', { url: '/read', headers: { cookie } }],
    ['a new session\'s save', { url: '/write' }],
    ['sessionStore.ping()', { url: '/ping' }]
  ] as const) {
    const started = performance.now()
    const response = await app.inject(request)
    const took = performance.now() - started
    t.equal(response.statusCode, 503, what)
    t.equal(response.json().code, 'FST_RS_STORE_UNAVAILABLE')
    t.match(response.json().message, `the connection to 127.0.0.1:${redis.port} is down (connect ECONNREFUSED`)
    t.ok(took < commandTimeout / 5, `${what} answered at once (${Math.round(took)} ms), not after commandTimeout`)
  }
  const warnings = logs.filter((line) => line.level === 40)
  t.equal(warnings.length, 1, 'one warning for the outage, however many requests and retries')
  t.match(warnings[0]?.msg, `Redis connection to 127.0.0.1:${redis.port} failed`)
  t.same(logs.filter((line) => line.level >= 50), [], 'and, with the README\'s error handler, no error line per request')

  await redis.revive()
  await waitFor(async () => (await app.inject({ url: '/write' })).statusCode === 200, { what: 'sessions to work again', timeout: 5000 })
  t.equal(logs.filter((line) => line.msg === `Redis connection to 127.0.0.1:${redis.port} is back`).length, 1, 'the end of the outage is logged once')
})

t.test('a client you own is watched too', async (t) => {
  const redis = await startRedis()
  t.teardown(async () => await redis.stop())
  const client = redis.admin({ commandTimeout, retryStrategy: () => 50 })
  t.teardown(() => client.disconnect())
  const app = Fastify()
  t.teardown(async () => await app.close())
  app.register(redisSession, { secret: SECRET, client })
  counterRoutes(app)
  await app.ready()
  await redis.kill()
  await waitFor(async () => (await app.inject('/write')).json().message?.includes('is down') === true,
    { what: 'a 503 that says the connection is down', timeout: 5000 })
  const response = await app.inject('/write')
  t.equal(response.statusCode, 503)
  t.match(response.json().message, `127.0.0.1:${redis.port}`)
})
