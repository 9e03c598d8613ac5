// Issue 15: `absoluteTimeout`, OWASP's absolute lifetime beside the idle timeout, in every layout
// and in LRU mode: however active, a session ends that long after it was created.
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { setTimeout as sleep } from 'node:timers/promises'
import { bucketKeys, bucketOf } from '../lib/stores/buckets.js'
import { buildApp, counterRoutes, idOf, privateRedis, recordTraffic, sessionCookie, type TestApp } from './helpers/app.js'

const ABSOLUTE = 2
const layouts = ['string', 'hash', 'bucketed'] as const
type Layout = typeof layouts[number]

function routes (app: FastifyInstance): void {
  counterRoutes(app)
  app.get('/remember-me', async (request) => {
    request.session.adjustTimeout(3600)
    return {}
  })
  app.get('/login', async (request) => {
    await request.session.regenerate()
    request.session.set('n', 100)
    return {}
  })
  app.get('/new-id', async (request) => {
    await request.session.regenerate(['n'])
    return {}
  })
}

/** Where Redis says the session expires, in ms since epoch: its key's TTL, or its score in the bucket's index. */
async function redisDeadline (setup: TestApp, layout: Layout, cookie: string): Promise<number> {
  const id = idOf(cookie)
  if (layout !== 'bucketed') return Date.now() + await setup.admin.pttl(`${layout}:${id}`)
  return Number(await setup.admin.zscore(bucketKeys(`${layout}:`, bucketOf(id, 16)).index, id))
}

interface Story {
  /** while the lifetime lasts: each read's { n, isNew } */
  reads: Array<{ n: number | null, isNew: boolean }>
  /** ms from createdAt to where Redis expires it, after each write or read (redisTtl only) */
  deadlines: number[]
  /** the first read after the lifetime */
  ended: { n: number | null, isNew: boolean }
  /** after the lifetime: the session regenerate() replaced midway, and the one regenerate(keep) replaced */
  regenerated: { n: number | null, isNew: boolean }
  kept: { n: number | null, isNew: boolean }
}

async function story (setup: TestApp, layout: Layout, redisTtl: boolean): Promise<Story> {
  const started = Date.now()
  const json = async (url: string, cookie: string): Promise<{ n: number | null, isNew: boolean }> => (await setup.request(url, cookie)).json()
  const cookie = sessionCookie(await setup.request('/write')) as string
  const other = sessionCookie(await setup.request('/write')) as string
  const keeping = sessionCookie(await setup.request('/write')) as string
  const deadlines: number[] = []
  const deadline = async (): Promise<void> => { if (redisTtl) deadlines.push(await redisDeadline(setup, layout, cookie) - started) }
  await deadline()
  await setup.request('/remember-me', cookie)
  await deadline()
  const reads: Story['reads'] = []
  while (Date.now() - started < ABSOLUTE * 1000 - 400) {
    reads.push(await json('/read', cookie))
    await deadline()
    await sleep(200)
  }
  await setup.request('/write', cookie)
  await deadline()
  const regeneratedCookie = sessionCookie(await setup.request('/login', other)) as string
  const keptCookie = sessionCookie(await setup.request('/new-id', keeping)) as string
  await sleep(ABSOLUTE * 1000 + 100 - (Date.now() - started))
  return {
    reads,
    deadlines,
    ended: await json('/read', cookie),
    regenerated: await json('/read', regeneratedCookie),
    kept: await json('/read', keptCookie)
  }
}

const redis = await privateRedis(t)
const cases = layouts.flatMap((layout) => [true, false].map((redisTtl) => ({ layout, redisTtl })))
const setups = await Promise.all(cases.map(async ({ layout, redisTtl }) => await buildApp(t,
  { layout, redisTtl, prefix: `${layout}:`, timeout: 1200, absoluteTimeout: ABSOLUTE, ...(layout === 'bucketed' ? { buckets: 16 } : {}) }, routes, {}, redis)))
const stories = await Promise.all(cases.map(async ({ layout, redisTtl }, i) => await story(setups[i], layout, redisTtl)))

cases.forEach(({ layout, redisTtl }, i) => {
  t.test(`${layout} layout${redisTtl ? '' : ', LRU mode'}`, async (t) => {
    const { reads, deadlines, ended, regenerated, kept } = stories[i]
    t.ok(reads.length >= 4, `${reads.length} reads while the lifetime lasts`)
    t.same(reads, reads.map(() => ({ n: 1, isNew: false })), 'the session lives while active')
    t.same(ended, { n: null, isNew: true }, 'however active, it ends with its lifetime: the request gets a fresh session')
    t.same(regenerated, { n: 100, isNew: false }, 'regenerate() starts a new lifetime')
    t.same(kept, { n: null, isNew: true }, 'regenerate(keep) keeps the old one')
    if (redisTtl) {
      t.ok(deadlines.length >= 6)
      t.ok(deadlines.every((ms) => ms <= ABSOLUTE * 1000 + 50), `Redis never keeps it past its lifetime, even after adjustTimeout(3600): ${deadlines.join(', ')} ms`)
      t.ok(deadlines.every((ms) => ms >= 900), 'nor ends it much before (whole seconds, rounded down)')
    }
  })
})

t.test('round trips: a read is still one command, plus for the string layout the PEXPIRE that cuts the expiry, unawaited', async (t) => {
  for (const layout of layouts) {
    const setup = await buildApp(t, { layout, prefix: `trips-${layout}:`, absoluteTimeout: 3600, ...(layout === 'bucketed' ? { buckets: 16 } : {}) }, routes, {}, redis)
    const cookie = sessionCookie(await setup.request('/write')) as string
    const traffic = recordTraffic(setup.app.sessionStore.client)
    t.same((await setup.request('/read', cookie)).json(), { n: 1, isNew: false })
    t.same(traffic.commands, layout === 'string' ? ['get', 'pexpire'] : ['evalsha'], layout)
  }
})

t.test('no idle timeout: the expiry is the end of the lifetime, and a read leaves it alone', async (t) => {
  for (const layout of layouts) {
    const prefix = `never-${layout}:`
    const setup = await buildApp(t, { layout, prefix, timeout: 0, absoluteTimeout: 60, ...(layout === 'bucketed' ? { buckets: 16 } : {}) }, routes, {}, redis)
    const before = Date.now()
    const cookie = sessionCookie(await setup.request('/write')) as string
    const id = idOf(cookie)
    const deadline = async (): Promise<number> => layout === 'bucketed'
      ? Number(await setup.admin.zscore(bucketKeys(prefix, bucketOf(id, 16)).index, id))
      : Date.now() + await setup.admin.pttl(prefix + id)
    const written = await deadline()
    t.ok(written > before + 59_000 && written <= Date.now() + 60_000, `${layout}: expires with its lifetime`)
    const traffic = recordTraffic(setup.app.sessionStore.client)
    t.same((await setup.request('/read', cookie)).json(), { n: 1, isNew: false })
    t.ok(Math.abs(await deadline() - written) < 50, `${layout}: a read leaves the end where it is`)
    if (layout === 'string') t.same(traffic.commands, ['get'], 'the string layout sends nothing after the GET')
  }
})
