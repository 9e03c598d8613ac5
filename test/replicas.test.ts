import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import redisSession, { type RedisSessionOptions } from '../lib/index.js'
import { bucketKeys, bucketOf } from '../lib/stores/buckets.js'
import { startRedis, waitFor, type RedisServer } from './helpers/index.js'
import { SECRET, idOf } from './helpers/app.js'
import { login, userRoutes } from './helpers/deployment.js'

// `replicas` is what makes an acknowledged save survive the loss of the master. Each case runs
// the same story on its own master and replica:
//   1. ada logs in while the replica is healthy;
//   2. the replica stalls and its link breaks (SIGSTOP, then the master drops it), as in a partition;
//   3. ada visits: the save reaches the master only;
//   4. the master dies and the replica is promoted, as a failover would do.
// The property: every save the app acknowledged (200) is on the promoted replica.

type Layout = 'string' | 'hash' | 'bucketed'
type Replicas = RedisSessionOptions['replicas']

interface Story {
  /** whether the replica had ada's session the moment the login's response came */
  loggedInOnReplica: boolean
  /** status and duration of the visit saved while the replica was cut off */
  visit: { status: number, code?: string, ms: number }
  /** ada's session on the promoted replica */
  promoted: Record<string, unknown> | null
}

async function appOn (t: Test, server: RedisServer, options: Partial<RedisSessionOptions>): Promise<FastifyInstance> {
  const app = Fastify()
  t.teardown(async () => await app.close())
  await app.register(redisSession, { secret: SECRET, url: server.url, commandTimeout: 1000, ...options })
  userRoutes(app)
  return app
}

async function story (t: Test, layout: Layout, replicas: Replicas): Promise<Story> {
  const master = await startRedis()
  t.teardown(async () => await master.stop())
  const replica = await startRedis({ config: [`replicaof 127.0.0.1 ${master.port}`] })
  t.teardown(async () => await replica.stop())
  const [masterAdmin, replicaAdmin] = [master.admin(), replica.admin()]
  t.teardown(() => { masterAdmin.disconnect(); replicaAdmin.disconnect() })
  // a replica just synced acknowledges a WAIT only from its next report on, up to a second later
  await waitFor(async () => {
    await masterAdmin.set('probe', '1')
    return await masterAdmin.wait(1, 100) === 1
  }, { what: 'the replica to acknowledge writes' })

  const app = await appOn(t, master, { layout, replicas })
  const cookie = await login(app, 'ada')
  const key = layout === 'bucketed' ? bucketKeys('sess:', bucketOf(idOf(cookie), 65536)).hash : 'sess:' + idOf(cookie)
  const loggedInOnReplica = await replicaAdmin.exists(key) === 1
  // without the option the login reaches the replica a little later: only the visit is at stake
  await waitFor(async () => await replicaAdmin.exists(key) === 1, { what: 'the login on the replica' })

  replica.pause()
  t.teardown(() => replica.resume())
  await masterAdmin.call('CLIENT', 'KILL', 'TYPE', 'replica')
  const started = performance.now()
  const response = await app.inject({ url: '/visit', headers: { cookie } })
  const visit = { status: response.statusCode, code: response.json().code, ms: performance.now() - started }

  await master.kill()
  replica.resume()
  await replicaAdmin.replicaof('NO', 'ONE')
  const promoted = await appOn(t, replica, { layout })
  return {
    loggedInOnReplica,
    visit,
    promoted: await promoted.sessionStore.get(idOf(cookie))
  }
}

/** The property `replicas` promises: what the app acknowledged survived the master. */
function acknowledgedSurvived ({ visit, promoted }: Story): boolean {
  return visit.status !== 200 || promoted?.visits === 1
}

// every story on its own servers, all at once
const layouts = ['string', 'hash', 'bucketed'] as const
const stories = await Promise.all(layouts.map(async (layout) => await Promise.all([
  story(t, layout, { count: 1, timeout: 500 }),
  story(t, layout, undefined)
])))

layouts.forEach((layout, i) => {
  const [waited, unwaited] = stories[i]
  t.test(`${layout} layout`, async (t) => {
    t.test('with replicas: { count: 1 }', async (t) => {
      t.ok(waited.loggedInOnReplica, 'an acknowledged save is on the replica the moment the response leaves')
      t.match(waited.visit, { status: 503, code: 'FST_RS_STORE_UNAVAILABLE' }, 'a save the replica cannot acknowledge gets a 503')
      t.ok(waited.visit.ms >= 500 && waited.visit.ms < 1000, `after the replicas timeout (${Math.round(waited.visit.ms)} ms), within commandTimeout`)
      t.ok(acknowledgedSurvived(waited), 'every acknowledged save survives the failover')
      t.same(waited.promoted, { user: 'ada' }, 'the promoted replica has what was acknowledged')
    })

    t.test('without replicas', async (t) => {
      t.equal(unwaited.visit.status, 200, 'the save is acknowledged though only the master has it')
      t.notOk(acknowledgedSurvived(unwaited), 'and lost in the failover: the property above fails without the option')
      t.same(unwaited.promoted, { user: 'ada' }, 'the promoted replica never saw the visit')
    })
  })
})
