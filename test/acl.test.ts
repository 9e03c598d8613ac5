import t, { type Test } from 'tap'
import { readFile } from 'node:fs/promises'
import Fastify, { type FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import redisSession, { type RedisSessionOptions } from '../lib/index.js'
import { neededCommands } from '../lib/connection.js'
import { makeTlsFiles, startRedis, waitFor } from './helpers/index.js'
import { SECRET, idOf } from './helpers/app.js'
import { aclLine, CLUSTER_ACL_COMMANDS, login, userRoutes } from './helpers/deployment.js'

const recommended = aclLine

const tls = await makeTlsFiles()
const redis = await startRedis({
  tls,
  tlsOnly: true,
  acl: [
    'user default on nopass ~* &* +@all',
    recommended('sessions', 'sess:'),
    recommended('other-prefix', 'app:'),
    recommended('no-expire', 'sess:').replace(' +expire', ''),
    recommended('no-eval', 'sess:').replace(' +eval ', ' '),
    recommended('migrating', 'app:', ' ~sess:*')
  ]
})
const replica = await startRedis({ tls, tlsOnly: true, config: [`replicaof 127.0.0.1 ${redis.port}`] })
t.teardown(async () => {
  await Promise.all([redis.stop(), replica.stop()])
  await tls.remove()
})
const admin = redis.admin()
t.teardown(() => admin.disconnect())
const replicaAdmin = replica.admin()
t.teardown(() => replicaAdmin.disconnect())
await waitFor(async () => (await replicaAdmin.info('replication')).includes('master_link_status:up'), { what: 'replica in sync' })

const urlOf = (user: string): string => `rediss://${user}:${user}-secret@127.0.0.1:${redis.port}`

async function aclApp (t: Test, user: string, options: Partial<RedisSessionOptions> = {}): Promise<FastifyInstance> {
  const app = Fastify()
  t.teardown(async () => await app.close())
  await app.register(redisSession, { secret: SECRET, url: urlOf(user), tls: { ca: tls.pem.ca }, ...options })
  userRoutes(app)
  app.get('/own', async (request) => {
    request.session.setOwner(request.session.get('user') as string)
    return {}
  })
  app.get('/logout', async (request) => {
    await request.session.destroy()
    return {}
  })
  return app
}

async function register (user: string, options: Partial<RedisSessionOptions> = {}): Promise<unknown> {
  const app = Fastify()
  try {
    await app.register(redisSession, { secret: SECRET, url: urlOf(user), tls: { ca: tls.pem.ca }, ...options }).ready()
    return undefined
  } catch (err) {
    return err
  } finally {
    await app.close()
  }
}

t.test('the README recommends this ACL line', async (t) => {
  const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8')
  const line = recommended('sessions', 'sess:').replace('>sessions-secret', '>…')
  t.ok(readme.includes(line), 'the line is in the README')
  t.ok(readme.includes(CLUSTER_ACL_COMMANDS), 'with what a Cluster adds')
})

t.test('the recommended ACL line lets every layout do everything, over rediss://', async (t) => {
  await admin.call('ACL', 'LOG', 'RESET')
  for (const layout of ['string', 'hash', 'bucketed'] as const) {
    for (const redisTtl of [true, false]) {
      // few buckets: a sweep visits every one
      const buckets = layout === 'bucketed' ? { buckets: 16 } : {}
      const app = await aclApp(t, 'sessions', { layout, redisTtl, absoluteTimeout: 3600, replicas: { count: 1, timeout: 1000 }, ...buckets })
      const first = await login(app, 'ada')
      const visit = await app.inject({ url: '/visit', headers: { cookie: first } })
      t.same(visit.json(), { user: 'ada', visits: 1 }, `${layout}, redisTtl ${String(redisTtl)}: load and save`)
      const cookie = String((await app.inject({ url: '/login/ada', headers: { cookie: first } })).headers['set-cookie']).split(';')[0]
      t.equal((await app.inject({ url: '/own', headers: { cookie } })).statusCode, 200)
      t.same((await app.sessionStore.listByOwner('ada')).map(({ id }) => id), [idOf(cookie)])
      t.equal(await app.sessionStore.destroyByOwner('ada'), 1)
      t.equal((await app.inject({ url: '/logout', headers: { cookie } })).statusCode, 200)
      t.equal(await app.sessionStore.get(idOf(cookie)), null)
      await app.sessionStore.destroy(idOf(first))
      t.equal(await app.sessionStore.sweep(), 0)
      await app.sessionStore.ping()
    }
  }
  t.same(await admin.call('ACL', 'LOG'), [], 'Redis denied nothing, not even ioredis\' INFO')
})

t.test('a user the ACL denies a needed command: register fails naming it', async (t) => {
  const cases: Array<[string, Partial<RedisSessionOptions>, RegExp]> = [
    ['no-expire', {}, /denies the user expire on keys like sess:access-check/],
    ['no-expire', { layout: 'hash' }, /denies the user expire on/],
    ['no-eval', { layout: 'bucketed' }, /denies the user eval on/],
    ['other-prefix', {}, /denies the user get, set, del, getex, expire, persist, sadd, srem, smembers, pttl on keys like sess:/],
    ['sessions', { layout: 'bucketed', prefix: 'app:' }, /denies the user hget, hexists/]
  ]
  for (const [user, options, message] of cases) {
    t.match(await register(user, options), { code: 'FST_RS_CONNECTION_REJECTED', message }, `${user} ${JSON.stringify(options)}`)
  }
  t.equal(await register('other-prefix', { prefix: 'app:' }), undefined, 'the same user with its own prefix')
  t.equal(await register('no-expire', { redisTtl: false }), undefined, 'LRU mode sends no EXPIRE')
  t.equal(await register('no-eval', {}), undefined, 'the string layout runs no script')
  t.match(await register('sessions', { replicas: { count: 1, timeout: 100 }, url: urlOf('no-expire') }), { message: /expire/ })
})

t.test('a denied user on a client the user owns: register fails, the client stays open', async (t) => {
  const client = new Redis(urlOf('no-expire'), { tls: { ca: tls.pem.ca } })
  t.teardown(() => client.disconnect())
  await waitFor(async () => client.status === 'ready', { what: 'the client to connect' })
  const app = Fastify()
  t.teardown(async () => await app.close())
  await t.rejects(async () => await app.register(redisSession, { secret: SECRET, client }).ready(), { code: 'FST_RS_CONNECTION_REJECTED' })
  t.equal(client.status, 'ready')
})

t.test('a Redis that cannot check the ACL (no EVAL): the check is skipped', async (t) => {
  const server = await startRedis({ config: ['rename-command EVAL ""'] })
  t.teardown(async () => await server.stop())
  const app = Fastify()
  t.teardown(async () => await app.close())
  await app.register(redisSession, { secret: SECRET, url: server.url, redisTtl: false })
  userRoutes(app)
  t.equal((await app.inject('/login/ada')).statusCode, 200)
})

t.test('migrateFrom: the old prefix needs GET and DEL too', async (t) => {
  const migrateFrom = { cookieName: 'sessionId', secret: 'old' }
  t.match(await register('other-prefix', { prefix: 'app:', migrateFrom }),
    { code: 'FST_RS_CONNECTION_REJECTED', message: /the ACL denies the user get, del on keys like sess:access-check$/ })
  t.match(await register('other-prefix', { prefix: 'app:', migrateFrom: { ...migrateFrom, prefix: 'old:' } }), { message: /on keys like old:access-check$/ })
  t.match(await register('no-expire', { migrateFrom: { ...migrateFrom, prefix: 'old:' } }),
    { message: /denies the user expire on keys like sess:access-check; get, del on keys like old:access-check$/ }, 'every prefix denied is named')
  t.equal(await register('migrating', { prefix: 'app:', migrateFrom }), undefined, 'a key pattern for each prefix')
  t.equal(await register('sessions', { migrateFrom }), undefined, 'one prefix for both')
})

t.test('the commands checked follow the options', async (t) => {
  t.same(neededCommands({ prefix: 'p:', layout: 'string', redisTtl: false, replicas: undefined }).map((c) => c.split(' ')[0]),
    ['get', 'set', 'del', 'sadd', 'srem', 'smembers', 'pttl', 'ping'])
  t.same(neededCommands({ prefix: 'p:', layout: 'string', redisTtl: true, replicas: { count: 1, timeout: 1 } }).map((c) => c.split(' ')[0]),
    ['get', 'set', 'del', 'getex', 'expire', 'persist', 'wait', 'sadd', 'srem', 'smembers', 'pttl', 'ping'])
  t.notOk(neededCommands({ prefix: 'p:', layout: 'bucketed', redisTtl: true, replicas: undefined }).includes('pttl K'), 'the bucketed layout lists expiries from its index')
  // absoluteTimeout cuts expiries to the ms; the bucketed layout keeps its expiries as scores
  for (const layout of ['string', 'hash'] as const) {
    t.ok(neededCommands({ prefix: 'p:', layout, redisTtl: true, absoluteTimeout: 60, replicas: undefined }).includes('pexpire K 1'), `${layout}: pexpire`)
    t.notOk(neededCommands({ prefix: 'p:', layout, redisTtl: false, absoluteTimeout: 60, replicas: undefined }).includes('pexpire K 1'), `${layout}, LRU mode: no expiry at all`)
  }
  t.notOk(neededCommands({ prefix: 'p:', layout: 'bucketed', redisTtl: true, absoluteTimeout: 60, replicas: undefined }).includes('pexpire K 1'))
})
