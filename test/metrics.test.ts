// The README's metrics recipe (example/metrics.js), as the demo serves it at /metrics: counters and
// a latency histogram fed from the tracing channels, failures counted by error code.
import { randomBytes } from 'node:crypto'
import t from 'tap'
import Fastify from 'fastify'
import redisSession from '../lib/index.js'
import { buildApp } from '../example/app.js'
import { sessionMetrics } from '../example/metrics.js'
import { waitFor } from './helpers/index.js'
import { privateRedis, sessionCookie } from './helpers/app.js'

/** The samples of the exposition text whose name starts with `prefix`, as `name{labels}` → value. */
function samples (text: string, prefix: string): Record<string, number> {
  const lines = text.split('\n').filter((line) => line.startsWith(prefix))
  return Object.fromEntries(lines.map((line) => {
    const at = line.lastIndexOf(' ')
    return [line.slice(0, at), Number(line.slice(at + 1))]
  }))
}

t.test('the demo counts loads, saves and destroys by outcome, times them, and counts failures', async (t) => {
  const { redis } = await privateRedis(t)
  const app = await buildApp({ secret: randomBytes(32).toString('base64url'), redisUrl: redis.url })
  t.teardown(async () => await app.close())
  const metrics = async (prefix: string): Promise<Record<string, number>> => {
    const response = await app.inject('/metrics')
    t.match(response.headers['content-type'], /^text\/plain/)
    t.equal(response.headers['set-cookie'], undefined, '/metrics has no session')
    return samples(response.body, prefix)
  }

  const cookie = sessionCookie(await app.inject('/')) as string
  await app.inject({ url: '/', headers: { cookie } })
  await app.inject({ url: '/peek', headers: { cookie } })
  // the record goes, and the flash that says so starts a new session
  await app.inject({ method: 'POST', url: '/logout', headers: { cookie } })
  t.same(await metrics('sessions_operations_total'), {
    'sessions_operations_total{operation="save",layout="string",outcome="saved"}': 3,
    'sessions_operations_total{operation="load",layout="string",outcome="loaded"}': 3,
    'sessions_operations_total{operation="destroy",layout="string",outcome="destroyed"}': 1
  })
  const counts = await metrics('sessions_operation_duration_seconds_count')
  t.same(counts, {
    'sessions_operation_duration_seconds_count{operation="save",layout="string"}': 3,
    'sessions_operation_duration_seconds_count{operation="load",layout="string"}': 3,
    'sessions_operation_duration_seconds_count{operation="destroy",layout="string"}': 1
  }, 'each operation timed once')
  const sums = Object.values(await metrics('sessions_operation_duration_seconds_sum'))
  t.ok(sums.every((seconds) => seconds > 0 && seconds < 60), `durations in seconds: ${sums.join(', ')}`)

  await redis.kill()
  await waitFor(async () => (await app.inject({ url: '/', headers: { cookie } })).statusCode === 503, { what: 'a 503' })
  const failures = await metrics('sessions_failures_total')
  t.ok(failures['sessions_failures_total{operation="load",layout="string",code="FST_RS_STORE_UNAVAILABLE"}'] >= 1, 'a failed load, by its code')
})

t.test('a failure without a code counts as unknown', async (t) => {
  const { redis } = await privateRedis(t)
  const app = Fastify()
  app.register(redisSession, { secret: randomBytes(32).toString('base64url'), url: redis.url })
  app.get('/circular', async (request) => {
    const loop: Record<string, unknown> = {}
    loop.self = loop
    request.session.set('loop', loop)
    return {}
  })
  const metrics = sessionMetrics()
  t.teardown(async () => { metrics.close(); await app.close() })
  t.equal((await app.inject('/circular')).statusCode, 500)
  t.same(samples(await metrics.registry.metrics(), 'sessions_failures_total'), {
    'sessions_failures_total{operation="save",layout="string",code="unknown"}': 1
  }, 'JSON.stringify threw a TypeError')
})

t.test('close() unsubscribes', async (t) => {
  const { redis } = await privateRedis(t)
  const app = await buildApp({ secret: randomBytes(32).toString('base64url'), redisUrl: redis.url })
  t.teardown(async () => await app.close())
  const metrics = sessionMetrics()
  await app.inject('/')
  metrics.close()
  await app.inject('/')
  t.same(samples(await metrics.registry.metrics(), 'sessions_operations_total'), {
    'sessions_operations_total{operation="save",layout="string",outcome="saved"}': 1
  })
})
