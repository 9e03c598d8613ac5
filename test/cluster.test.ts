import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import { Command, type Cluster, type Redis } from 'ioredis'
import redisSession, { type RedisSessionOptions } from '../lib/index.js'
import { bucketKeys, bucketOf } from '../lib/stores/buckets.js'
import { freePort, holderOf, startCluster, waitFor, type RedisServer } from './helpers/index.js'
import { SECRET, idOf } from './helpers/app.js'
import { aclLine, checkOutcomes, CLUSTER_ACL_COMMANDS, hammer, handlesLeftBy, login, userRoutes } from './helpers/deployment.js'

const PASSWORD = 'cluster-secret'
const cluster = await startCluster({ password: PASSWORD })
t.teardown(async () => await cluster.stop())
const admins = cluster.servers.map((server) => server.admin())
t.teardown(() => admins.forEach((admin) => admin.disconnect()))
await Promise.all(admins.map(async (admin) => await admin.ping()))

async function clusterApp (t: Test, options: Partial<RedisSessionOptions> = {}): Promise<FastifyInstance> {
  const app = Fastify()
  t.teardown(async () => await app.close())
  await app.register(redisSession, { secret: SECRET, cluster: { nodes: cluster.nodes }, password: PASSWORD, ...options })
  userRoutes(app)
  app.get('/logout', async (request) => {
    await request.session.destroy()
    return {}
  })
  app.get('/own/:owner', async (request) => {
    request.session.setOwner((request.params as { owner: string }).owner)
    return {}
  })
  return app
}

/** Keys of every command the client sends, per command. */
function recordKeys (client: Redis | Cluster): Array<{ name: string, keys: string[] }> {
  const sent: Array<{ name: string, keys: string[] }> = []
  const send = client.sendCommand.bind(client) as (...args: unknown[]) => unknown
  ;(client as unknown as { sendCommand: (...args: unknown[]) => unknown }).sendCommand = (...args: unknown[]) => {
    const command = args[0] as Command
    sent.push({ name: command.name, keys: command.getKeys().map(String) })
    return send(...args)
  }
  return sent
}

t.test('sessions spread over every master', async (t) => {
  const app = await clusterApp(t, { prefix: 'spread:' })
  const holders = new Set<number>()
  for (let i = 0; i < 24; i++) {
    const key = 'spread:' + idOf(await login(app, `user${i}`))
    const slot = await admins[0].cluster('KEYSLOT', key)
    const holder = await holderOf(admins, key)
    // a slot may hold other keys too: another session or an owner index that hashed there
    t.ok((await admins[holder].cluster('GETKEYSINSLOT', slot, 100) as string[]).includes(key), `slot ${slot} holds the session on master ${holder}`)
    holders.add(holder)
  }
  t.same([...holders].sort(), [0, 1, 2], 'every master holds sessions')
})

for (const layout of ['string', 'hash', 'bucketed'] as const) {
  t.test(`${layout} layout: every command touches a single slot (no CROSSSLOT)`, async (t) => {
    const prefix = `slots-${layout}:`
    // few buckets: a sweep visits every one
    const app = await clusterApp(t, { layout, prefix, ...(layout === 'bucketed' ? { buckets: 64 } : {}) })
    const sent = recordKeys(app.sessionStore.client)
    const first = await login(app, 'ada')
    t.same((await app.inject({ url: '/visit', headers: { cookie: first } })).json(), { user: 'ada', visits: 1 })
    // regenerate: the old record is deleted and the new one written, each by its own commands
    const second = (await app.inject({ url: '/login/ada', headers: { cookie: first } })).headers['set-cookie'] as string
    const cookie = second.split(';')[0]
    t.not(idOf(cookie), idOf(first), 'a new id')
    t.equal(await app.sessionStore.get(idOf(first)), null, 'the old record is gone')
    t.same(await app.sessionStore.get(idOf(cookie)), { user: 'ada' }, 'regenerate() started afresh')
    t.equal((await app.inject({ url: '/own/ada', headers: { cookie } })).statusCode, 200)
    t.same(await app.sessionStore.listByOwner('ada'), [idOf(cookie)])
    t.equal(await app.sessionStore.sweep(), 0)
    t.equal(await app.sessionStore.destroyByOwner('ada'), 1)
    t.equal((await app.inject({ url: '/logout', headers: { cookie } })).statusCode, 200)
    await app.sessionStore.ping()

    const keyed = sent.filter((command) => command.keys.length > 0)
    t.ok(keyed.length > 8, `${keyed.length} commands with keys`)
    const spanning = keyed.filter((command) => new Set(command.keys.map((key) => new Command('get', [key]).getSlot())).size > 1)
    t.same(spanning, [], 'no command spans two slots')
    t.ok(keyed.every((command) => command.keys.every((key) => key.startsWith(prefix))), 'every key has the prefix')
  })
}

t.test('an ACL user with the recommended line, plus what the Cluster client needs', async (t) => {
  const setUser = aclLine('sessions', 'sess:', ' ' + CLUSTER_ACL_COMMANDS).split(' ').slice(1)
  await Promise.all(admins.map(async (admin) => {
    await admin.call('ACL', 'SETUSER', ...setUser)
    await admin.call('ACL', 'LOG', 'RESET')
  }))
  const app = await clusterApp(t, { username: 'sessions', password: 'sessions-secret' })
  const cookie = await login(app, 'ada')
  t.same((await app.inject({ url: '/visit', headers: { cookie } })).json(), { user: 'ada', visits: 1 })
  t.same(await Promise.all(admins.map(async (admin) => await admin.call('ACL', 'LOG'))), [[], [], []], 'no node denied anything')
})

// Issue 15: ioredis' Cluster retried its refused ready check (CLUSTER INFO) forever, silently,
// so register hung; a user without the slot map failed already.
t.test('an ACL user without what the Cluster client needs: register fails with FST_RS_CONNECTION_REJECTED naming it', async (t) => {
  for (const missing of ['+cluster|info', '+cluster|slots']) {
    const granted = CLUSTER_ACL_COMMANDS.split(' ').filter((command) => command !== missing).join(' ')
    const setUser = aclLine('partial', 'sess:', ' ' + granted).split(' ').slice(1)
    await Promise.all(admins.map(async (admin) => {
      await admin.call('ACL', 'SETUSER', 'partial', 'reset')
      await admin.call('ACL', 'SETUSER', ...setUser)
    }))
    const app = Fastify()
    t.teardown(async () => await app.close())
    const started = performance.now()
    await t.rejects(async () => await app.register(redisSession, { secret: SECRET, cluster: { nodes: cluster.nodes }, username: 'partial', password: 'partial-secret' }).ready(), {
      code: 'FST_RS_CONNECTION_REJECTED',
      message: `NOPERM this user has no permissions to run the '${missing.slice(1)}' command (a Cluster's ACL user also needs ${CLUSTER_ACL_COMMANDS})`
    }, `without ${missing}`)
    t.ok(performance.now() - started < 2000, `at once (${Math.round(performance.now() - started)} ms)`)
  }
})

t.test('a wrong or missing password fails register with FST_RS_CONNECTION_REJECTED', async (t) => {
  for (const password of ['wrong', undefined]) {
    const app = Fastify()
    t.teardown(async () => await app.close())
    await t.rejects(async () => await app.register(redisSession, { secret: SECRET, cluster: { nodes: cluster.nodes }, password }).ready(),
      { code: 'FST_RS_CONNECTION_REJECTED', message: /WRONGPASS|NOAUTH/ })
  }
})

t.test('an unreachable cluster: the app starts and session requests get a 503 at once', async (t) => {
  const started = performance.now()
  const app = await clusterApp(t, { cluster: { nodes: [{ host: '127.0.0.1', port: await freePort() }] }, commandTimeout: 300 })
  await app.ready()
  t.ok(performance.now() - started < 1000, 'register did not wait')
  const before = performance.now()
  const response = await app.inject('/login/ada')
  t.equal(response.statusCode, 503)
  t.equal(response.json().code, 'FST_RS_STORE_UNAVAILABLE')
  t.ok(performance.now() - before < 300, 'no waiting in a queue for the cluster to come back')
})

t.test('a master restart: requests get their session, a fresh one or a 503, then all succeed', async (t) => {
  const commandTimeout = 500
  const app = await clusterApp(t, { prefix: 'restart:', commandTimeout })
  const cookies = new Map<string, string>()
  for (let i = 0; i < 12; i++) cookies.set(`user${i}`, await login(app, `user${i}`))
  const holders = new Map<string, number>()
  for (const [user, cookie] of cookies) holders.set(user, await holderOf(admins, 'restart:' + idOf(cookie)))
  const restarted = 1
  const outcomes = await hammer(app, cookies, '/whoami', async () => await cluster.restartNode(restarted))
  checkOutcomes(t, outcomes, commandTimeout + 1000)

  const after = await hammer(app, cookies, '/whoami', async () => await new Promise((resolve) => setTimeout(resolve, 300)))
  t.same(after.filter((o) => o.status !== 200), [], 'every request succeeds once the master is back')
  for (const [user, holder] of holders) {
    const seen = after.filter((o) => o.user === user).map((o) => o.seen)
    // the restarted master had no persistence: its sessions are gone, the others' are kept
    t.same(new Set(seen), new Set([holder === restarted ? null : user]), `${user} on master ${holder}`)
  }
})

t.test('app.close() leaves no socket or timer behind', async (t) => {
  // with replicas, the saves' own Cluster clients too (no master has a replica yet: every save gets a 503)
  for (const options of [{}, { replicas: { count: 1, timeout: 100 } }]) {
    t.same(await handlesLeftBy(async () => {
      const app = Fastify()
      await app.register(redisSession, { secret: SECRET, cluster: { nodes: cluster.nodes }, password: PASSWORD, ...options })
      userRoutes(app)
      await Promise.all([0, 1, 2, 3, 4, 5].map(async (i) => await app.inject(`/login/user${i}`)))
      await app.close()
    }), {}, JSON.stringify(options))
  }
})

let replica: RedisServer | undefined

t.test('replicas: each save waits on the node that holds the session, not on a random one', async (t) => {
  // only master 0 has a replica: saves of sessions it holds are acknowledged, all others are not
  replica = await cluster.addReplica(0)
  for (const layout of ['string', 'hash', 'bucketed'] as const) {
    const prefix = `wait-${layout}:`
    const setup = await clusterApp(t, { layout, prefix })
    const app = await clusterApp(t, { layout, prefix, replicas: { count: 1, timeout: 100 } })
    const results = { acknowledged: 0, refused: 0 }
    for (let i = 0; i < 40 && (results.acknowledged < 2 || results.refused < 2); i++) {
      const cookie = await login(setup, `user${i}`)
      const key = layout === 'bucketed' ? bucketKeys(prefix, bucketOf(idOf(cookie), 65536)).hash : prefix + idOf(cookie)
      const holder = await holderOf(admins, key)
      const response = await app.inject({ url: '/visit', headers: { cookie } })
      if (holder === 0) {
        t.equal(response.statusCode, 200, `${layout}: held by master 0, acknowledged by its replica`, { body: response.body })
        results.acknowledged++
      } else {
        t.equal(response.statusCode, 503, `${layout}: held by master ${holder}, which has no replica`)
        results.refused++
      }
    }
    t.ok(results.acknowledged > 0 && results.refused > 0, `${layout}: ${JSON.stringify(results)}`)
  }
})

t.test('master 0 dies: its replica takes over its slots with every acknowledged session', async (t) => {
  const commandTimeout = 500
  const app = await clusterApp(t, { prefix: 'failover:', replicas: { count: 1, timeout: 100 }, commandTimeout })
  const cookies = new Map<string, string>()
  for (let i = 0; cookies.size < 4; i++) {
    const response = await app.inject(`/login/user${i}`)
    // only sessions on master 0 are acknowledged (its replica has them); the others get 503 and no cookie
    if (response.statusCode === 200) cookies.set(`user${i}`, String(response.headers['set-cookie']).split(';')[0])
  }
  const replicaAdmin = (replica as RedisServer).admin()
  t.teardown(() => replicaAdmin.disconnect())
  await cluster.servers[0].kill()
  const outcomes = await hammer(app, cookies, '/whoami', async () => {
    await waitFor(async () => (await replicaAdmin.info('replication')).includes('role:master'), { what: 'the replica to be promoted', timeout: 20_000 })
    // until the client has found the new master
    await waitFor(async () => (await app.inject({ url: '/whoami', headers: { cookie: [...cookies.values()][0] } })).statusCode === 200,
      { what: 'requests to succeed again' })
  })
  checkOutcomes(t, outcomes, commandTimeout + 1000)
  for (const [user, cookie] of cookies) {
    t.same((await app.inject({ url: '/whoami', headers: { cookie } })).json(), { user }, `${user}'s session survived`)
  }
})
