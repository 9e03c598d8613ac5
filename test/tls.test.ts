import t from 'tap'
import Fastify from 'fastify'
import redisSession, { type RedisSessionOptions } from '../lib/index.js'
import { freePort, makeTlsFiles, startRedis } from './helpers/index.js'
import { SECRET, idOf } from './helpers/app.js'
import { login, userRoutes } from './helpers/deployment.js'

const tls = await makeTlsFiles()
const [redis, mutual] = await Promise.all([
  startRedis({ tls, tlsOnly: true }),
  startRedis({ tls, tlsOnly: true, requireClientCert: true })
])
t.teardown(async () => {
  await Promise.all([redis.stop(), mutual.stop()])
  await tls.remove()
})
const admin = redis.admin()
t.teardown(() => admin.disconnect())

const rediss = `rediss://127.0.0.1:${redis.port}`
const clientCert = { cert: tls.pem.clientCert, key: tls.pem.clientKey }

/** Registers the plugin; resolves to the register error, or to the status of a session write. */
async function attempt (options: Partial<RedisSessionOptions>): Promise<{ error?: unknown, status?: number, ms: number }> {
  const app = Fastify()
  userRoutes(app)
  const started = performance.now()
  try {
    await app.register(redisSession, { secret: SECRET, connectTimeout: 2000, ...options }).ready()
    const response = await app.inject('/login/ada')
    const cookie = String(response.headers['set-cookie']).split(';')[0]
    if (options.url === rediss && response.statusCode === 200) await admin.del('sess:' + idOf(cookie))
    return { status: response.statusCode, ms: performance.now() - started }
  } catch (error) {
    return { error, ms: performance.now() - started }
  } finally {
    await app.close()
  }
}

t.test('connects when the CA is trusted', async (t) => {
  const accepted: Array<[string, Partial<RedisSessionOptions>]> = [
    ['rediss:// with tls.ca', { url: rediss, tls: { ca: tls.pem.ca } }],
    ['host and port with tls.ca', { host: '127.0.0.1', port: redis.port, tls: { ca: tls.pem.ca } }],
    ['tls.servername checked against the certificate', { host: '127.0.0.1', port: redis.port, tls: { ca: tls.pem.ca, servername: 'localhost' } }],
    ['tlsSkipVerify with any CA, or none', { url: rediss, tlsSkipVerify: true }],
    ['tlsSkipVerify alone turns TLS on', { host: '127.0.0.1', port: redis.port, tlsSkipVerify: true }]
  ]
  for (const [what, options] of accepted) t.match(await attempt(options), { status: 200, error: undefined }, what)
})

t.test('refuses a certificate it cannot verify: register fails with FST_RS_CONNECTION_REJECTED at once', async (t) => {
  const refused: Array<[string, Partial<RedisSessionOptions>]> = [
    // the system CAs, which never signed the test CA
    ['tls: true alone', { host: '127.0.0.1', port: redis.port, tls: true }],
    ['rediss:// alone', { url: rediss }],
    ['an unknown CA', { url: rediss, tls: { ca: tls.pem.otherCa } }],
    ['a servername the certificate does not name', { url: rediss, tls: { ca: tls.pem.ca, servername: 'redis.example.com' } }]
  ]
  for (const [what, options] of refused) {
    const { error, ms } = await attempt(options)
    t.match(error, { code: 'FST_RS_CONNECTION_REJECTED', cause: { code: /CERT|ALTNAME/ } }, what)
    t.ok(ms < 1000, `${what}: failed in ${Math.round(ms)} ms, no retries until connectTimeout`)
  }
})

t.test('mutual TLS', async (t) => {
  const url = `rediss://127.0.0.1:${mutual.port}`
  t.match(await attempt({ url, tls: { ca: tls.pem.ca, ...clientCert } }), { status: 200, error: undefined }, 'with the client certificate')
  // the server may drop the connection before the client reads its alert: whichever comes first
  for (let i = 0; i < 5; i++) {
    const { error } = await attempt({ url, tls: { ca: tls.pem.ca } })
    t.match(error, { code: 'FST_RS_CONNECTION_REJECTED', message: /certificate required/ }, 'without it, register fails')
  }
})

t.test('no refusal, only an outage: the app starts, requests get 503s', async (t) => {
  const outages: Array<[string, Partial<RedisSessionOptions>]> = [
    ['plain TCP to a TLS-only port', { host: '127.0.0.1', port: redis.port }],
    ['TLS to a port nobody listens on', { host: '127.0.0.1', port: await freePort(), tls: { ca: tls.pem.ca } }]
  ]
  for (const [what, options] of outages) {
    const { status, ms } = await attempt({ ...options, commandTimeout: 300 })
    t.equal(status, 503, what)
    t.ok(ms < 2000, `${what}: ${Math.round(ms)} ms`)
  }
})

t.test('sessions written over TLS are in Redis', async (t) => {
  const app = Fastify()
  t.teardown(async () => await app.close())
  await app.register(redisSession, { secret: SECRET, url: rediss, tls: { ca: tls.pem.ca } })
  userRoutes(app)
  const cookie = await login(app, 'ada')
  t.equal(await admin.exists('sess:' + idOf(cookie)), 1)
  t.same((await app.inject({ url: '/whoami', headers: { cookie } })).json(), { user: 'ada' })
})
