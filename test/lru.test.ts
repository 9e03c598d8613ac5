import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { startRedis } from './helpers/index.js'
import { buildApp, sessionCookie } from './helpers/app.js'

// LRU mode (`redisTtl: false`) on a Redis that evicts under memory pressure: an evicted session
// is simply a new session on its next request, never an error, and the others keep their data.

const PAD = 'p'.repeat(400)

function routes (app: FastifyInstance): void {
  app.get<{ Params: { who: string } }>('/create/:who', async (request) => {
    request.session.set('who', Number(request.params.who))
    request.session.set('pad', PAD)
    return {}
  })
  app.get('/read', async (request) => ({ isNew: request.session.isNew, who: request.session.get('who') ?? null }))
  app.get('/write', async (request) => {
    request.session.set('writes', (request.session.get('writes') as number | undefined ?? 0) + 1)
    return { isNew: request.session.isNew, who: request.session.get('who') ?? null }
  })
}

for (const layout of ['string', 'hash', 'bucketed'] as const) {
  t.test(`${layout} layout under maxmemory 2mb with allkeys-lru`, async (t) => {
    const redis = await startRedis({ args: ['--maxmemory', '2mb', '--maxmemory-policy', 'allkeys-lru'] })
    const admin = redis.admin()
    t.teardown(async () => {
      admin.disconnect()
      await redis.stop()
    })
    const options = { redisTtl: false, layout, ...(layout === 'bucketed' ? { buckets: 256 } : {}) }
    const { request } = await buildApp(t, options, routes, {}, { redis, admin })
    const evictions = async (): Promise<number> => Number(/evicted_keys:(\d+)/.exec(await admin.info('stats'))?.[1])

    // write sessions until Redis has evicted a good share of them
    const cookies: string[] = []
    const statuses = new Set<number>()
    while ((await evictions()) < 200 && cookies.length < 20_000) {
      const batch = await Promise.all(Array.from({ length: 100 }, async (_, i) => await request('/create/' + (cookies.length + i))))
      for (const response of batch) {
        statuses.add(response.statusCode)
        cookies.push(sessionCookie(response) as string)
      }
    }
    t.same([...statuses], [200], 'every write succeeded while Redis was evicting')
    t.ok(await evictions() >= 200, `${await evictions()} keys evicted after ${cookies.length} sessions`)

    let evicted = 0
    let kept = 0
    const wrong: string[] = []
    for (let who = 0; who < cookies.length; who++) {
      const response = await request(who % 2 === 0 ? '/read' : '/write', cookies[who])
      const body = response.json()
      if (response.statusCode !== 200) wrong.push(`${who}: status ${response.statusCode} ${response.body}`)
      else if (body.isNew === true && body.who === null) evicted++
      else if (body.isNew === false && body.who === who) kept++
      else wrong.push(`${who}: ${response.body}`)
    }
    t.same(wrong, [], 'every request is a 200: its own session, or a new one')
    t.ok(evicted > 0, `${evicted} sessions were evicted and came back new`)
    t.ok(kept > 0, `${kept} sessions kept their data`)

    // an evicted session written again is a new session under a new id, stored and readable
    const response = await request('/write', cookies[0])
    const renewed = sessionCookie(response)
    if (response.json().isNew === true) {
      t.ok(renewed !== undefined && renewed !== cookies[0], 'a write on an evicted session starts a new one')
      t.same((await request('/read', renewed)).json(), { isNew: false, who: null })
    } else {
      t.equal(renewed, undefined, 'session 0 survived: a write to it sets no cookie')
    }
  })
}
