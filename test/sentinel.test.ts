import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import type { Redis } from 'ioredis'
import redisSession, { type RedisSessionOptions } from '../lib/index.js'
import { freePort, makeTlsFiles, startSentinelGroup, waitFor } from './helpers/index.js'
import { SECRET, idOf } from './helpers/app.js'
import { checkOutcomes, hammer, handlesLeftBy, login, userRoutes } from './helpers/deployment.js'

const PASSWORD = 'node-secret'
const SENTINEL_PASSWORD = 'sentinel-secret'
const tls = await makeTlsFiles()
const [group, tlsGroup] = await Promise.all([
  startSentinelGroup({ password: PASSWORD, sentinelPassword: SENTINEL_PASSWORD }),
  startSentinelGroup({ tls })
])
t.teardown(async () => {
  await Promise.all([group.stop(), tlsGroup.stop()])
  await tls.remove()
})

const sentinelOptions = { sentinel: { sentinels: group.sentinels, name: group.name, password: SENTINEL_PASSWORD }, password: PASSWORD }

async function sentinelApp (t: Test, options: Partial<RedisSessionOptions>): Promise<FastifyInstance> {
  const app = Fastify()
  t.teardown(async () => await app.close())
  await app.register(redisSession, { secret: SECRET, ...options })
  userRoutes(app)
  return app
}

async function runId (client: Redis): Promise<string> {
  return /run_id:(\w+)/.exec(await client.info('server'))?.[1] as string
}

t.test('a failover: sessions written before it are read after it, requests during it never hang or mix', async (t) => {
  const commandTimeout = 500
  const app = await sentinelApp(t, { ...sentinelOptions, commandTimeout })
  const client = app.sessionStore.client as Redis
  const cookies = new Map<string, string>()
  for (let i = 0; i < 8; i++) cookies.set(`user${i}`, await login(app, `user${i}`))
  const replica = group.replica.admin()
  t.teardown(() => replica.disconnect())
  await waitFor(async () => (await Promise.all([...cookies.values()].map(async (cookie) => await replica.exists('sess:' + idOf(cookie))))).every(Boolean),
    { what: 'the replica to have every session' })
  const oldMaster = await runId(client)

  const outcomes = await hammer(app, cookies, '/visit', async () => await group.failover())
  const unavailable = checkOutcomes(t, outcomes, commandTimeout + 1000)
  t.comment(`${outcomes.length} requests during the failover, ${unavailable} got a 503`)

  const newMaster = group.master.admin()
  t.teardown(() => newMaster.disconnect())
  await waitFor(async () => await runId(client) === await runId(newMaster), { what: 'the app\'s client to reach the new master' })
  t.not(await runId(client), oldMaster, 'the client follows the failover by itself')
  for (const [user, cookie] of cookies) {
    const response = await app.inject({ url: '/visit', headers: { cookie } })
    t.equal(response.json().user, user, `${user}'s session, written before the failover, is read after it`)
  }
})

t.test('refusals fail register with FST_RS_CONNECTION_REJECTED', async (t) => {
  const { sentinels, name } = group
  const cases: Array<[string, Partial<RedisSessionOptions>, RegExp]> = [
    ['a wrong sentinel password', { sentinel: { sentinels, name, password: 'wrong' }, password: PASSWORD }, /WRONGPASS/],
    ['no sentinel password', { sentinel: { sentinels, name }, password: PASSWORD }, /NOAUTH/],
    ['a wrong master password', { ...sentinelOptions, password: 'wrong' }, /WRONGPASS/],
    ['a master name no sentinel knows', { sentinel: { sentinels, name: 'nope', password: SENTINEL_PASSWORD }, password: PASSWORD }, /No such master/]
  ]
  for (const [what, options, message] of cases) {
    const app = Fastify()
    t.teardown(async () => await app.close())
    await t.rejects(async () => await app.register(redisSession, { secret: SECRET, ...options }).ready(),
      { code: 'FST_RS_CONNECTION_REJECTED', message }, what)
  }
})

t.test('unreachable sentinels: the app starts, session requests get a 503 within commandTimeout', async (t) => {
  const started = performance.now()
  const app = await sentinelApp(t, { sentinel: { sentinels: [{ host: '127.0.0.1', port: await freePort() }], name: 'mymaster' }, commandTimeout: 300 })
  await app.ready()
  t.ok(performance.now() - started < 1000, 'register did not wait')
  const before = performance.now()
  const response = await app.inject('/login/ada')
  t.equal(response.statusCode, 503)
  t.ok(performance.now() - before < 1000, `answered in ${Math.round(performance.now() - before)} ms`)
})

t.test('sentinels and nodes over TLS', async (t) => {
  const { sentinels, name } = tlsGroup
  t.test('the CA is trusted: sessions work', async (t) => {
    const app = await sentinelApp(t, { sentinel: { sentinels, name }, tls: { ca: tls.pem.ca } })
    const cookie = await login(app, 'ada')
    t.same((await app.inject({ url: '/whoami', headers: { cookie } })).json(), { user: 'ada' })
    const master = tlsGroup.master.admin()
    t.teardown(() => master.disconnect())
    t.equal(await master.exists('sess:' + idOf(cookie)), 1, 'stored on the master, reached over TLS')
  })

  const refusals: Array<[string, Partial<RedisSessionOptions>]> = [
    ['an unknown CA for sentinels and nodes', { sentinel: { sentinels, name }, tls: { ca: tls.pem.otherCa } }],
    ['sentinels trusted, the master not', { sentinel: { sentinels, name, tls: { ca: tls.pem.ca } }, tls: { ca: tls.pem.otherCa } }]
  ]
  for (const [what, options] of refusals) {
    t.test(`${what}: register fails with FST_RS_CONNECTION_REJECTED`, async (t) => {
      const app = Fastify()
      t.teardown(async () => await app.close())
      await t.rejects(async () => await app.register(redisSession, { secret: SECRET, ...options }).ready(),
        { code: 'FST_RS_CONNECTION_REJECTED', message: /certificate/ })
    })
  }

  t.test('a sentinel that is down or hangs is no refusal: the app starts', async (t) => {
    const hung = tlsGroup.sentinelServers[2]
    hung.pause()
    t.teardown(() => hung.resume())
    const connectTimeout = 300
    for (const sentinel of [{ host: '127.0.0.1', port: await freePort() }, tlsGroup.sentinels[2]]) {
      const started = performance.now()
      const app = await sentinelApp(t, { sentinel: { sentinels: [sentinel], name }, tls: { ca: tls.pem.ca }, connectTimeout, commandTimeout: 300 })
      await app.ready()
      t.ok(performance.now() - started < 4 * connectTimeout, `register took ${Math.round(performance.now() - started)} ms`)
      t.equal((await app.inject('/login/ada')).statusCode, 503)
    }
  })
})

t.test('app.close() leaves no socket or timer behind, the failover detector\'s included', async (t) => {
  const shapes: Array<Partial<RedisSessionOptions>> = [
    sentinelOptions,
    // the saves' own connections, each with its failover detector
    { ...sentinelOptions, replicas: { count: 1, timeout: 500 } },
    { sentinel: { sentinels: tlsGroup.sentinels, name: tlsGroup.name }, tls: { ca: tls.pem.ca } }
  ]
  for (const options of shapes) {
    t.same(await handlesLeftBy(async () => {
      const app = Fastify()
      await app.register(redisSession, { secret: SECRET, ...options })
      userRoutes(app)
      await login(app, 'ada')
      await app.close()
    }), {})
  }
})

// Last: it leaves the group's old master to the sentinels, which demote it only seconds later.
t.test('the client moves on the sentinels\' +switch-master, before the old master is even demoted', async (t) => {
  const app = await sentinelApp(t, sentinelOptions)
  const client = app.sessionStore.client as Redis
  const [oldMaster, newMaster, sentinel] = [group.master.admin(), group.replica.admin(), group.sentinelServers[0].admin()]
  t.teardown(() => [oldMaster, newMaster, sentinel].forEach((admin) => admin.disconnect()))
  t.equal(await runId(client), await runId(oldMaster))
  await waitFor(async () => await sentinel.call('SENTINEL', 'FAILOVER', group.name).then(() => true, (err: Error) => {
    if (/NOGOODSLAVE|INPROG/.test(err.message)) return false
    throw err
  }), { what: 'SENTINEL FAILOVER to be accepted', timeout: 20_000, interval: 250 })
  const newId = await runId(newMaster)
  await waitFor(async () => await runId(client) === newId, { what: 'the client on the new master' })
  t.equal(String((await oldMaster.call('ROLE') as unknown[])[0]), 'master', 'the old master still takes writes: only +switch-master moved the client')
  const cookie = await login(app, 'ada')
  t.equal(await newMaster.exists('sess:' + idOf(cookie)), 1, 'new sessions go to the new master')
})
