import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import type { Redis } from 'ioredis'
import redisSession, { type RedisSessionOptions } from '../lib/index.js'
import { bucketKeys, bucketOf } from '../lib/stores/buckets.js'
import { setTimeout as sleep } from 'node:timers/promises'
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

/** A master and its replica, in sync, with an admin client on each. */
async function replicated (t: Test): Promise<{ master: RedisServer, replica: RedisServer, masterAdmin: Redis, replicaAdmin: Redis }> {
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
  return { master, replica, masterAdmin, replicaAdmin }
}

async function story (t: Test, layout: Layout, replicas: Replicas): Promise<Story> {
  const { master, replica, masterAdmin, replicaAdmin } = await replicated(t)

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

// Issue 15: WAIT blocks the connection it is sent on until the replicas answer. Saves wait on
// connections of their own, so while the replica stalls every other session keeps being served.
t.test('a save waiting for a stalled replica holds up no read and no other save', async (t) => {
  const { master, replica, masterAdmin } = await replicated(t)
  const commandTimeout = 2000
  const waitTimeout = 1000
  const clients = async (): Promise<number> => String(await masterAdmin.call('CLIENT', 'LIST', 'TYPE', 'normal')).trim().split('\n').length
  const before = await clients()
  for (const layout of layouts) {
    const app = Fastify()
    await app.register(redisSession, { secret: SECRET, url: master.url, layout, prefix: `${layout}:`, commandTimeout, replicas: { count: 1, timeout: waitTimeout } })
    userRoutes(app)
    const timed = async (cookie: string, url: string): Promise<{ status: number, ms: number }> => {
      const started = performance.now()
      const response = await app.inject({ url, headers: { cookie } })
      return { status: response.statusCode, ms: performance.now() - started }
    }
    const [ada, bob, cy] = [await login(app, 'ada'), await login(app, 'bob'), await login(app, 'cy')]

    replica.pause()
    const adaSave = timed(ada, '/visit')
    await sleep(200)
    const bobSave = timed(bob, '/visit')
    const reads: Array<{ status: number, ms: number }> = []
    while (reads.length < 10) {
      reads.push(await timed(cy, '/whoami'))
      await sleep(50)
    }
    const [adaResult, bobResult] = await Promise.all([adaSave, bobSave])
    replica.resume()

    t.match(adaResult, { status: 503 }, `${layout}: the save the replica cannot acknowledge gets a 503`)
    t.ok(adaResult.ms >= waitTimeout, `${layout}: after the replicas timeout (${Math.round(adaResult.ms)} ms)`)
    t.same(reads.map(({ status }) => status), reads.map(() => 200), `${layout}: every read of another session answers while the save waits`)
    const slowest = Math.max(...reads.map(({ ms }) => ms))
    t.ok(slowest < commandTimeout / 20, `${layout}: the slowest within ${commandTimeout / 20} ms (${Math.round(slowest)} ms)`)
    t.match(bobResult, { status: 503 }, `${layout}: another session's save waits on its own`)
    t.ok(bobResult.ms < waitTimeout + 300, `${layout}: for its own WAIT only, not behind the first (${Math.round(bobResult.ms)} ms)`)
    await waitFor(async () => (await timed(ada, '/visit')).status === 200, { what: `${layout}: saves to be acknowledged again` })

    await app.close()
    await waitFor(async () => await clients() === before, { what: `${layout}: the save connections to close with the app` })
  }
})
