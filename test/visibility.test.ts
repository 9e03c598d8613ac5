// Issue 14 (part A): the tracing channels fastify-redis-sessions:load|save|destroy, the lifecycle
// events of fastify.sessionStore and request.session.ended, each subscribed to on real Redis.
import t, { type Test } from 'tap'
import { AsyncLocalStorage } from 'node:async_hooks'
import { tracingChannel } from 'node:diagnostics_channel'
import type { FastifyInstance } from 'fastify'
import type { Cluster, Redis } from 'ioredis'
import type { SessionEvent, SessionStoreEvents, SessionTraceContext } from '../lib/index.js'
import { bucketKeys, bucketOf } from '../lib/stores/buckets.js'
import { commandDelta, waitFor } from './helpers/index.js'
import { buildApp, idOf, privateRedis, sessionCookie, type TestApp } from './helpers/app.js'

type Layout = SessionTraceContext['layout']
type Operation = 'load' | 'save' | 'destroy'
const EVENTS = ['start', 'end', 'asyncStart', 'asyncEnd', 'error'] as const
/** What a call that Redis answered publishes, in order. */
const ANSWERED = ['start', 'end', 'asyncStart', 'asyncEnd']

interface Published {
  event: typeof EVENTS[number]
  /** a copy of the context as it was when published */
  context: SessionTraceContext & { result?: unknown }
}

/** Everything the operation's tracing channel publishes until the test ends. */
function subscribe (t: Test, operation: Operation): Published[] {
  const published: Published[] = []
  const channel = tracingChannel<unknown, SessionTraceContext>('fastify-redis-sessions:' + operation)
  // a copy without the keys diagnostics_channel leaves undefined (`result` of a call that resolved to nothing)
  const copy = (context: object): Published['context'] => Object.fromEntries(Object.entries(context).filter(([, value]) => value !== undefined)) as Published['context']
  const subscribers = Object.fromEntries(EVENTS.map((event) => [event, (context: SessionTraceContext) => { published.push({ event, context: copy(context) }) }]))
  channel.subscribe(subscribers as never)
  t.teardown(() => channel.unsubscribe(subscribers as never))
  return published
}

/** The events published, and the context once the operation ended, of each call. */
function calls (published: Published[]): Array<{ events: string[], context: Published['context'] }> {
  const starts = published.flatMap((entry, i) => entry.event === 'start' ? [i] : [])
  return starts.map((start, n) => {
    const own = published.slice(start, starts[n + 1])
    return { events: own.map((entry) => entry.event), context: own[own.length - 1].context }
  })
}

/** The bytes Redis holds for the session: what the channels report as `bytes`. */
async function storedBytes (admin: Redis | Cluster, layout: Layout, id: string): Promise<number> {
  if (layout === 'string') return await admin.strlen('sess:' + id)
  if (layout === 'hash') {
    const fields = await admin.hgetallBuffer('sess:' + id)
    return Object.entries(fields).reduce((sum, [field, value]) => sum + Buffer.byteLength(field) + value.length, 0)
  }
  return await admin.hstrlen(bucketKeys('sess:', bucketOf(id, 65536)).hash, id)
}

let release: () => void = () => {}
function routes (app: FastifyInstance): void {
  app.get('/write', async (request) => {
    request.session.set('n', (request.session.get('n') as number | undefined ?? 0) + 1)
    request.session.set('user', { name: 'ada', roles: ['reader'] })
    return {}
  })
  app.get('/read', async (request) => ({ n: request.session.get('n') ?? null, ended: request.session.ended, isNew: request.session.isNew }))
  // writes only once the test lets it: a destroy can get in between load and save
  app.get('/slow-write', async (request) => {
    await new Promise<void>((resolve) => { release = resolve })
    request.session.set('n', 100)
    return {}
  })
  app.get<{ Querystring: { owner?: string } }>('/login', async (request) => {
    await request.session.regenerate(['n'])
    if (request.query.owner !== undefined) request.session.setOwner(request.query.owner)
    return {}
  })
  app.get('/logout', async (request) => {
    await request.session.destroy()
    return { ended: request.session.ended }
  })
}

for (const layout of ['string', 'hash', 'bucketed'] as const) {
  t.test(`${layout} layout: what each channel publishes, and never the id`, async (t) => {
    const setup = await buildApp(t, { layout }, routes)
    const { request, admin, app } = setup
    const load = subscribe(t, 'load')
    const save = subscribe(t, 'save')
    const destroy = subscribe(t, 'destroy')

    const cookie = sessionCookie(await request('/write')) as string
    const id = idOf(cookie)
    t.same(calls(load), [], 'no cookie: nothing loaded')
    t.same(calls(save), [{ events: ANSWERED, context: { layout, outcome: 'saved', bytes: await storedBytes(admin, layout, id) } }], 'a new session saved, with its bytes')

    await request('/write', cookie)
    const bytes = await storedBytes(admin, layout, id)
    t.same(calls(load)[0], { events: ANSWERED, context: { layout, outcome: 'loaded', bytes } }, 'loaded, with what Redis holds')
    t.same(calls(save)[1].context, { layout, outcome: 'saved', bytes }, 'an existing session saved')

    // a nested value could have changed: the store compares at once, finds nothing to write, and no save is made
    await request('/read', cookie)
    t.equal(calls(save).length, 2, 'nothing to write: no save')

    const writing = request('/slow-write', cookie)
    await waitFor(async () => calls(load).length === 3 && calls(load)[2].events.length === 4, { what: 'the slow write to load' })
    await app.sessionStore.destroy(id)
    release()
    await writing
    t.same(calls(destroy), [{ events: ANSWERED, context: { layout, outcome: 'destroyed' } }], 'sessionStore.destroy: destroyed')
    t.same(calls(save)[2].context, { layout, outcome: 'lost' }, 'the save lost to the destroy')

    t.same((await request('/read', cookie)).json(), { n: null, ended: true, isNew: true })
    t.same(calls(load)[3].context, { layout, outcome: 'missing' }, 'a cookie whose session is gone')
    await app.sessionStore.destroy(id)
    t.same(calls(destroy)[1].context, { layout, outcome: 'missing' }, 'a destroy that found nothing')

    const second = sessionCookie(await request('/write')) as string
    await request('/logout', second)
    t.same(calls(destroy)[2].context, { layout, outcome: 'destroyed' }, 'session.destroy()')

    const everything = JSON.stringify([load, save, destroy])
    for (const secret of [id, idOf(second), cookie.split('=')[1], second.split('=')[1]]) t.notOk(everything.includes(secret), 'no id, no cookie value')
    t.ok([...load, ...save, ...destroy].every(({ context }) => context.result === undefined), 'no record, no data: the result is not published')
  })
}

t.test("an APM's bindStore on start: the store call runs in its context, as with tracePromise", async (t) => {
  const { request } = await buildApp(t, {}, routes)
  const storage = new AsyncLocalStorage<string>()
  const channel = tracingChannel<unknown, SessionTraceContext>('fastify-redis-sessions:save')
  channel.start.bindStore(storage, (context) => `span of a ${context.layout} save`)
  const seen: Array<string | undefined> = []
  const asyncEnd = (): void => { seen.push(storage.getStore()) }
  channel.asyncEnd.subscribe(asyncEnd)
  t.teardown(() => {
    channel.start.unbindStore(storage)
    channel.asyncEnd.unsubscribe(asyncEnd)
  })
  await request('/write')
  t.same(seen, ['span of a string save'])
})

t.test('LRU mode: a loaded record that expired is missing, and its owner is told with expired', async (t) => {
  const { request, app } = await buildApp(t, { redisTtl: false, timeout: 1 }, routes)
  const load = subscribe(t, 'load')
  const expired: SessionEvent[] = []
  app.sessionStore.on('expired', (event) => { expired.push(event) })
  const cookie = sessionCookie(await request('/login?owner=kim')) as string
  await new Promise((resolve) => setTimeout(resolve, 1100))
  t.same((await request('/read', cookie)).json(), { n: null, ended: true, isNew: true })
  t.same(calls(load)[0].context.outcome, 'missing', 'the record was there, but expired')
  t.same(expired, [{ id: idOf(cookie), owner: 'kim' }])
})

t.test('a cached read publishes load too, from memory: no bytes', async (t) => {
  const { request, admin } = await buildApp(t, { cache: true }, routes)
  const load = subscribe(t, 'load')
  const cookie = sessionCookie(await request('/write')) as string
  t.same(await commandDelta(admin, async () => await request('/read', cookie)), {}, 'served from the cache')
  t.same(calls(load), [{ events: ANSWERED, context: { layout: 'string', outcome: 'loaded' } }])
})

t.test('Redis down: the error channel carries FST_RS_STORE_UNAVAILABLE', async (t) => {
  const commandTimeout = 300
  const setup = await buildApp(t, { commandTimeout }, routes)
  const { request, redis } = setup
  const cookie = sessionCookie(await request('/write')) as string
  const load = subscribe(t, 'load')
  const save = subscribe(t, 'save')
  const destroy = subscribe(t, 'destroy')
  const failedWith = (published: Published[]): string[] => calls(published).map(({ events, context }) =>
    `${events.join(' ')} · ${(context.error as { code?: string }).code} · ${JSON.stringify({ ...context, error: undefined })}`)

  // paused: the commands are sent, and time out
  redis.pause()
  t.teardown(() => redis.resume())
  t.equal((await request('/read', cookie)).statusCode, 503)
  t.equal((await request('/write')).statusCode, 503)
  await t.rejects(setup.app.sessionStore.destroy(idOf(cookie)), { code: 'FST_RS_STORE_UNAVAILABLE' })
  redis.resume()
  const timedOut = 'start end error asyncStart asyncEnd · FST_RS_STORE_UNAVAILABLE · {"layout":"string"}'
  t.same(failedWith(load), [timedOut], 'a read that timed out')
  t.same(failedWith(save), [timedOut], 'a save that timed out')
  t.same(failedWith(destroy), [timedOut], 'a destroy that timed out')
  redis.pause()
  setup.app.sessionStore.on('destroyed', () => {})
  await t.rejects(setup.app.sessionStore.destroy(idOf(cookie)), { code: 'FST_RS_STORE_UNAVAILABLE' }, 'reading the owner for a listener timed out')
  redis.resume()

  // killed: the connection is known to be down, nothing is sent
  await redis.kill()
  await waitFor(async () => (await request('/read', cookie)).json().message?.includes('is down') === true, { what: 'the outage to be known' })
  load.length = 0
  save.length = 0
  t.equal((await request('/read', cookie)).statusCode, 503)
  t.equal((await request('/write')).statusCode, 503)
  t.same(failedWith(load), ['start error end · FST_RS_STORE_UNAVAILABLE · {"layout":"string"}'], 'a read refused at once')
  t.same(failedWith(save), ['start error end · FST_RS_STORE_UNAVAILABLE · {"layout":"string"}'], 'a save refused at once')
  destroy.length = 0
  await t.rejects(setup.app.sessionStore.destroy(idOf(cookie)), { code: 'FST_RS_STORE_UNAVAILABLE' })
  await t.rejects(setup.app.sessionStore.destroyByOwner('someone'), { code: 'FST_RS_STORE_UNAVAILABLE' })
  t.same(failedWith(destroy), Array(2).fill('start error end · FST_RS_STORE_UNAVAILABLE · {"layout":"string"}'), 'destroys refused at once')
})

/** Every lifecycle event of the app's sessionStore, in order, as `[name, payload]`. */
function listen (setup: TestApp): Array<[keyof SessionStoreEvents, SessionEvent]> {
  const heard: Array<[keyof SessionStoreEvents, SessionEvent]> = []
  for (const event of ['created', 'regenerated', 'destroyed', 'expired'] as const) {
    setup.app.sessionStore.on(event, (payload) => { heard.push([event, payload]) })
  }
  return heard
}

for (const layout of ['string', 'hash', 'bucketed'] as const) {
  t.test(`${layout} layout: lifecycle events, each once`, async (t) => {
    const setup = await buildApp(t, { layout }, routes)
    const { request, app } = setup
    const heard = listen(setup)

    const cookie = sessionCookie(await request('/write')) as string
    const id = idOf(cookie)
    await request('/write', cookie)
    t.same(heard, [['created', { id, owner: undefined }]], 'created on the first save only')

    const login = sessionCookie(await request('/login?owner=lea', cookie)) as string
    t.same(heard.splice(0), [['created', { id, owner: undefined }], ['regenerated', { id: idOf(login), owner: 'lea', previousId: id }]])

    t.same((await request('/read', cookie)).json(), { n: null, ended: true, isNew: true }, 'the old cookie: its session ended')
    t.same(heard.splice(0), [['expired', { id, owner: undefined }]])
    t.same((await request('/read', login)).json(), { n: 2, ended: false, isNew: false })

    t.same((await request('/logout', login)).json(), { ended: false }, 'destroyed here: ended tells of the cookie the request came with')
    await app.sessionStore.destroy(idOf(login))
    t.same(heard.splice(0), [['destroyed', { id: idOf(login), owner: 'lea' }]], 'destroyed once: the second destroy found nothing')

    const [a, b] = await Promise.all([request('/login?owner=max'), request('/login?owner=max')])
    heard.length = 0
    t.equal(await app.sessionStore.destroyByOwner('max'), 2)
    t.same(heard.map(([event, { id, owner }]) => `${event} ${id} ${owner}`).sort(),
      [a, b].map((response) => `destroyed ${idOf(sessionCookie(response) as string)} max`).sort(), 'destroyByOwner: one per session')

    const c = sessionCookie(await request('/login?owner=noa')) as string
    heard.length = 0
    await app.sessionStore.destroy(idOf(c))
    t.same(heard, [['destroyed', { id: idOf(c), owner: 'noa' }]], 'sessionStore.destroy: the owner is read for the listener')
    t.same(await app.sessionStore.listByOwner('noa'), [], 'and the session leaves its index')

    const d = idOf(sessionCookie(await request('/write')) as string)
    if (layout === 'string') await setup.admin.set('sess:' + d, 'not a record')
    else if (layout === 'hash') await setup.admin.hdel('sess:' + d, '__proto__')
    else await setup.admin.hset(bucketKeys('sess:', bucketOf(d, 65536)).hash, d, 'not a record')
    heard.length = 0
    await app.sessionStore.destroy(d)
    t.same(heard, [['destroyed', { id: d, owner: undefined }]], 'a record that does not decode is destroyed all the same, its owner unknown')
  })
}

t.test('without a destroyed listener, sessionStore.destroy reads nothing first', async (t) => {
  const setup = await buildApp(t, {}, routes)
  const cookie = sessionCookie(await setup.request('/write')) as string
  t.same(await commandDelta(setup.admin, async () => await setup.app.sessionStore.destroy(idOf(cookie))), { del: 1 })
  const listener = (): void => {}
  setup.app.sessionStore.on('destroyed', listener)
  const other = sessionCookie(await setup.request('/write')) as string
  t.same(await commandDelta(setup.admin, async () => await setup.app.sessionStore.destroy(idOf(other))), { getex: 1, del: 1 }, 'a listener: the owner is read first')
  setup.app.sessionStore.off('destroyed', listener)
  const third = sessionCookie(await setup.request('/write')) as string
  t.same(await commandDelta(setup.admin, async () => await setup.app.sessionStore.destroy(idOf(third))), { del: 1 }, 'off removed it')
})

t.test('once, and listeners that throw or reject: logged, the request unharmed', async (t) => {
  const logs: Array<{ level: number, msg: string, event?: string, err?: { message: string } }> = []
  const given = await privateRedis(t)
  const setup = await buildApp(t, {}, routes, { logger: { level: 'info', stream: { write: (line: string) => logs.push(JSON.parse(line)) } } }, given)
  const heard: string[] = []
  setup.app.sessionStore.once('created', () => { heard.push('once') })
  setup.app.sessionStore.on('created', () => { throw new Error('listener bug') })
  setup.app.sessionStore.on('created', async () => { throw new Error('async listener bug') })
  setup.app.sessionStore.on('created', ({ id }) => { heard.push(id) })

  const first = await setup.request('/write')
  t.equal(first.statusCode, 200)
  const second = await setup.request('/write')
  t.same(heard, ['once', idOf(sessionCookie(first) as string), idOf(sessionCookie(second) as string)], 'the listeners after the one that threw still ran; once ran once')
  await waitFor(async () => logs.filter((line) => line.level === 50).length === 4, { what: 'the failures to be logged' })
  t.same(logs.filter((line) => line.level === 50).map(({ msg, event, err }) => [msg, event, err?.message]), [
    ["a sessionStore 'created' listener failed", 'created', 'listener bug'],
    ["a sessionStore 'created' listener failed", 'created', 'async listener bug'],
    ["a sessionStore 'created' listener failed", 'created', 'listener bug'],
    ["a sessionStore 'created' listener failed", 'created', 'async listener bug']
  ])
})
