import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import { bucketKeys, bucketOf } from '../lib/stores/buckets.js'
import { startCluster, waitFor } from './helpers/index.js'
import { buildApp, privateRedis } from './helpers/app.js'
import { expireInBucket as expire, newSessions } from './helpers/sessions.js'

const PREFIX = 'sess:'

function routes (app: FastifyInstance): void {
  app.get('/write', async (request) => {
    request.session.set('n', 1)
    return {}
  })
}

t.test('sweep() removes the expired sessions of the bucketed layout, and only those', async (t) => {
  const setup = await buildApp(t, { layout: 'bucketed', buckets: 8 }, routes)
  const ids = await newSessions(setup, 10)
  for (const id of ids.slice(0, 4)) await expire(setup.admin, id, 8)
  t.equal(await setup.app.sessionStore.sweep(), 4)
  for (const [i, id] of ids.entries()) {
    const { hash, index } = bucketKeys(PREFIX, bucketOf(id, 8))
    const kept = i >= 4 ? 1 : 0
    t.equal(await setup.admin.hexists(hash, id), kept)
    t.equal(await setup.admin.zscore(index, id) === null ? 0 : 1, kept)
  }
  t.equal(await setup.app.sessionStore.sweep(), 0, 'nothing left to sweep')
})

t.test('sweep() works through a bucket in bounded batches', async (t) => {
  const setup = await buildApp(t, { layout: 'bucketed', buckets: 1 }, routes)
  const { hash, index } = bucketKeys(PREFIX, 0)
  const pipeline = setup.admin.pipeline()
  for (let i = 0; i < 1200; i++) pipeline.hset(hash, `expired-${i}`, ':1:|{}').zadd(index, Date.now() - 1000, `expired-${i}`)
  await pipeline.exec()
  const [live] = await newSessions(setup, 1)
  t.equal(await setup.app.sessionStore.sweep(), 1200)
  t.same(await setup.admin.hkeys(hash), [live])
})

t.test('the string and hash layouts have nothing to sweep: Redis expires their keys', async (t) => {
  for (const layout of ['string', 'hash'] as const) {
    const setup = await buildApp(t, { layout }, routes)
    await newSessions(setup, 1)
    t.equal(await setup.app.sessionStore.sweep(), 0, layout)
  }
})

t.test('sweepInterval', async (t) => {
  t.test('sweeps on a timer that keeps no process alive and stops with the app', async (t) => {
    const { redis, admin } = await privateRedis(t)
    const timers = (): number => process.getActiveResourcesInfo().filter((resource) => resource === 'Timeout').length
    const before = timers()
    const setup = await buildApp(t, { layout: 'bucketed', buckets: 4, sweepInterval: 0.05 }, routes, {}, { redis, admin })
    t.equal(timers(), before, 'the timer is unref\'d')
    const [id] = await newSessions(setup, 1)
    await expire(admin, id, 4)
    const { hash } = bucketKeys(PREFIX, bucketOf(id, 4))
    await waitFor(async () => await admin.hexists(hash, id) === 0, { what: 'the expired session to be swept' })

    await setup.app.close()
    await admin.hset(hash, id, ':1:|{}')
    await expire(admin, id, 4)
    await sleep(200)
    t.equal(await admin.hexists(hash, id), 1, 'no sweeps after close')
  })

  t.test('a failed sweep is logged and the next one runs', async (t) => {
    const { redis, admin } = await privateRedis(t)
    const logs: string[] = []
    const setup = await buildApp(t, { layout: 'bucketed', buckets: 4, sweepInterval: 0.05, commandTimeout: 200 }, routes,
      { logger: { level: 'warn', stream: { write: (line: string) => logs.push(line) } } }, { redis, admin })
    const [id] = await newSessions(setup, 1)
    redis.pause()
    await waitFor(async () => logs.some((line) => line.includes('session sweep failed')), { what: 'the failure to be logged' })
    redis.resume()
    await expire(admin, id, 4)
    await waitFor(async () => await admin.hexists(bucketKeys(PREFIX, bucketOf(id, 4)).hash, id) === 0, { what: 'a sweep after the outage' })
  })

  t.test('closing waits for the sweep under way before the client goes', async (t) => {
    const { redis, admin } = await privateRedis(t)
    const logs: string[] = []
    // more buckets than are swept at once: a sweep cut off by the closing client would fail on the next ones
    const setup = await buildApp(t, { layout: 'bucketed', buckets: 64, sweepInterval: 0.01 }, routes,
      { logger: { level: 'warn', stream: { write: (line: string) => logs.push(line) } } }, { redis, admin })
    redis.pause()
    await sleep(50)
    const closing = setup.app.close()
    await sleep(100)
    redis.resume()
    await closing
    t.notOk(logs.some((line) => line.includes('session sweep failed')), 'the sweep finished')
  })
})

t.test('buckets and sweepInterval are bucketed options', async (t) => {
  const shared = await privateRedis(t)
  await t.rejects(buildApp(t, { layout: 'hash', buckets: 16, sweepInterval: 60 }, routes, {}, shared), {
    code: 'FST_RS_INVALID_OPTIONS',
    message: /\/buckets only applies to layout 'bucketed'.*; \/sweepInterval only applies to layout 'bucketed'/
  })
  await t.rejects(buildApp(t, { sweepInterval: 60 }, routes, {}, shared), { message: /\/sweepInterval only applies/ })
  await t.rejects(buildApp(t, { layout: 'bucketed', buckets: 0, sweepInterval: 0 }, routes, {}, shared), {
    message: /\/buckets .*; \/sweepInterval /
  })
  await t.rejects(buildApp(t, { layout: 'columnar' as 'hash' }, routes, {}, shared), { message: /\/layout / })
})

t.test('on Redis Cluster: buckets and their indexes share a slot, sweeps reach every node', async (t) => {
  const cluster = await startCluster()
  t.teardown(async () => await cluster.stop())
  const admin = cluster.servers[0].admin()
  t.teardown(() => admin.disconnect())
  const setup = await buildApp(t, { layout: 'bucketed', buckets: 32, url: undefined, cluster: { nodes: cluster.nodes } }, routes, {},
    { redis: cluster.servers[0], admin })
  const client = setup.app.sessionStore.client
  const ids = await newSessions(setup, 12)
  for (const id of ids.slice(0, 5)) await expire(client, id, 32)
  t.equal(await setup.app.sessionStore.sweep(), 5)
})
