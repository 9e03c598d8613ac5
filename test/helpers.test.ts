import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { Cluster, Redis, type RedisOptions } from 'ioredis'
import { commandDelta, makeTlsFiles, startCluster, startRedis, startSentinelGroup, type RedisServer } from './helpers/index.js'

// Every subtest starts its own servers, so they can all run at once.
t.jobs = 8

/** A client that fails instead of retrying, for asserting refusals. */
const noRetry: RedisOptions = { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null }

/** ioredis rejects `connect()` with "Connection is closed."; the cause arrives as 'error'. */
async function refusal (redis: Redis): Promise<Error> {
  const [[err]] = await Promise.all([once(redis, 'error') as Promise<[Error]>, redis.connect().catch(() => {})])
  return err
}

function client (t: Test, server: RedisServer, options: RedisOptions = {}): Redis {
  const redis = server.admin(options)
  t.teardown(() => { redis.disconnect() })
  return redis
}

const tls = await makeTlsFiles()
t.teardown(() => tls.remove())

t.test('standalone: PING, restart on the same port, pause, idempotent stop', async t => {
  const server = await startRedis()
  t.teardown(() => server.stop())
  t.equal(server.host, '127.0.0.1')
  t.equal(server.url, `redis://127.0.0.1:${server.port}`)
  const redis = client(t, server)
  t.equal(await redis.ping(), 'PONG')

  const { port, pid } = server
  await server.restart()
  t.equal(server.port, port, 'same port')
  t.not(server.pid, pid, 'new process')
  t.equal(await redis.ping(), 'PONG', 'the client reconnects')

  server.pause()
  const pending = redis.ping()
  const first = await Promise.race([pending, sleep(300).then(() => 'no reply')])
  t.equal(first, 'no reply', 'a paused server does not answer')
  server.resume()
  t.equal(await pending, 'PONG', 'it answers once resumed')

  // A client left reconnecting to a freed port could reach another test's server.
  redis.disconnect()
  await server.stop()
  await server.stop()
  t.pass('stop twice')
})

t.test('unix socket', async t => {
  const server = await startRedis({ unixSocket: true })
  t.teardown(() => server.stop())
  t.ok(server.socketPath?.startsWith(server.dir))
  const redis = client(t, server, { path: server.socketPath })
  t.equal(await redis.ping(), 'PONG')
})

t.test('password and an ACL user restricted to ~sess:*', async t => {
  const server = await startRedis({
    password: 'admin-pw',
    acl: ['user app on >secret ~sess:* +@all -@dangerous']
  })
  t.teardown(() => server.stop())
  t.equal(server.url, `redis://:admin-pw@127.0.0.1:${server.port}`)
  t.equal(await client(t, server).ping(), 'PONG', 'admin() authenticates as default')

  const app = client(t, server, { username: 'app', password: 'secret' })
  t.equal(await app.set('sess:x', '1'), 'OK')
  await t.rejects(app.set('other:x', '1'), /NOPERM/)

  const anonymous = client(t, server, { ...noRetry, password: undefined })
  t.match((await refusal(anonymous)).message, /NOAUTH/)
})

t.test('TLS only: the CA is trusted, an unknown CA is refused', async t => {
  const server = await startRedis({ tls, tlsOnly: true })
  t.teardown(() => server.stop())
  t.equal(server.url, `rediss://127.0.0.1:${server.port}`)
  const trusted = client(t, server, { tls: { ca: tls.pem.ca } })
  t.equal(await trusted.ping(), 'PONG')

  const untrusted = client(t, server, { ...noRetry, tls: { ca: tls.pem.otherCa } })
  t.match((await refusal(untrusted)).message, /unable to verify|self.signed/i)
})

t.test('mutual TLS requires the client certificate', async t => {
  const server = await startRedis({ tls, tlsOnly: true, requireClientCert: true })
  t.teardown(() => server.stop())
  t.equal(await client(t, server).ping(), 'PONG', 'admin() presents the client certificate')

  const anonymous = client(t, server, { ...noRetry, tls: { ca: tls.pem.ca } })
  t.match((await refusal(anonymous)).message, /certificate required|ECONNRESET|closed/i)
})

t.test('shared REDIS_URL is used only when allowed', async t => {
  const server = await startRedis()
  t.teardown(() => server.stop())
  const saved = process.env.REDIS_URL
  process.env.REDIS_URL = server.url
  t.teardown(() => { if (saved === undefined) delete process.env.REDIS_URL; else process.env.REDIS_URL = saved })

  const shared = await startRedis({ shared: true })
  t.equal(shared.port, server.port)
  await shared.stop()
  t.equal(await client(t, server).ping(), 'PONG', 'stop() of a shared server is a no-op')

  const own = await startRedis({ shared: true, password: 'x' })
  t.teardown(() => own.stop())
  t.not(own.port, server.port, 'shaping options get a private server')
})

t.test('sentinel group: failover moves the master and keeps the data', async t => {
  const group = await startSentinelGroup()
  t.teardown(() => group.stop())
  t.equal(group.sentinels.length, 3)
  const oldPort = group.master.port

  const master = client(t, group.master)
  await master.set('sess:failover', 'kept')
  t.equal(await master.wait(1, 2000), 1, 'replicated')

  await group.failover()
  const sentinel = new Redis(group.sentinels[0])
  t.teardown(() => { sentinel.disconnect() })
  const [, port] = await sentinel.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', group.name) as string[]
  t.not(Number(port), oldPort, 'another node is master')
  t.equal(Number(port), group.master.port, 'group.master follows')

  const viaSentinel = new Redis({ sentinels: group.sentinels, name: group.name })
  t.teardown(() => { viaSentinel.disconnect() })
  t.equal(await viaSentinel.get('sess:failover'), 'kept')
  t.equal(await viaSentinel.set('sess:after', '1'), 'OK', 'the new master takes writes')
})

t.test('sentinel group over TLS with passwords: clients follow a failover', async t => {
  const group = await startSentinelGroup({ tls, password: 'node-pw', sentinelPassword: 'sentinel-pw' })
  t.teardown(() => group.stop())
  const tlsOptions = { ca: tls.pem.ca }
  const redis = new Redis({
    sentinels: group.sentinels,
    name: group.name,
    password: 'node-pw',
    sentinelPassword: 'sentinel-pw',
    enableTLSForSentinelMode: true,
    sentinelTLS: tlsOptions,
    tls: tlsOptions
  })
  t.teardown(() => { redis.disconnect() })
  await redis.set('sess:tls', 'kept')
  t.equal(await redis.wait(1, 2000), 1, 'replicated')

  await group.failover()
  t.equal(await redis.get('sess:tls'), 'kept')
  t.equal(await redis.set('sess:tls', 'new'), 'OK', 'an existing client writes to the new master')
})

t.test('cluster: state ok and keys spread over every node', async t => {
  const cluster = await startCluster()
  t.teardown(() => cluster.stop())
  t.equal(cluster.nodes.length, 3)
  for (const server of cluster.servers) {
    t.match(await client(t, server).call('CLUSTER', 'INFO'), /cluster_state:ok/)
  }

  const redis = new Cluster(cluster.nodes)
  t.teardown(() => { redis.disconnect() })
  await Promise.all(Array.from({ length: 30 }, async (_, i) => await redis.set(`sess:${i}`, String(i))))
  const sizes = await Promise.all(cluster.servers.map(async s => await client(t, s).dbsize()))
  t.ok(sizes.every(n => n > 0), `keys on every node: ${sizes.join(', ')}`)

  await cluster.restartNode(1)
  t.equal(await redis.set('sess:after-restart', '1'), 'OK', 'the cluster serves again')
})

t.test('commandDelta counts a GET and a SET', async t => {
  const server = await startRedis()
  t.teardown(() => server.stop())
  const admin = client(t, server)
  const app = client(t, server)
  await app.ping()
  const delta = await commandDelta(admin, async () => {
    await app.set('sess:k', 'v')
    await app.get('sess:k')
  })
  t.same(delta, { set: 1, get: 1 })
})
