import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import fastifyFlash from '@fastify/flash'
import { commandDelta } from './helpers/index.js'
import { buildApp, idOf, privateRedis, sessionCookie, type TestApp } from './helpers/app.js'

interface Query { type?: string, message?: string }

function routes (app: FastifyInstance): void {
  app.get<{ Querystring: Query }>('/add', async (request) => {
    const { type = 'info', message = 'a' } = request.query
    return { waiting: request.flash(type, message) }
  })
  app.get('/add-formatted', async (request) => ({ waiting: request.flash('info', 'Hello %s, you have %d new messages', 'Ada', 3, 'extra') }))
  app.get('/add-array', async (request) => ({ waiting: request.flash('info', ['x', 'y']) }))
  app.get('/add-nothing', async (request) => ({ waiting: request.flash('info') }))
  app.get<{ Querystring: Query }>('/show', async (request, reply) => {
    const { type } = request.query
    return type === undefined ? reply.flash() : reply.flash(type)
  })
  app.get<{ Querystring: Query }>('/peek', async (request) => {
    const { type } = request.query
    return type === undefined ? request.session.peekFlash() : request.session.peekFlash(type)
  })
  app.get('/json', async (request) => {
    request.session.set('user', 'ada')
    request.flash('info', 'welcome')
    return { json: request.session.toJSON(), keys: request.session.keys() }
  })
  app.get('/no-session', { config: { session: false } }, async (request) => ({ waiting: request.flash('info', 'a') }))
}

const redis = await privateRedis(t)
const app = async (t: Test, register: (app: FastifyInstance) => void = () => {}): Promise<TestApp> =>
  await buildApp(t, {}, (app) => { register(app); routes(app) }, {}, redis)

t.test('a message is shown once, on the next request', async (t) => {
  const setup = await app(t)
  const added = await setup.request('/add?type=info&message=saved')
  t.same(added.json(), { waiting: 1 })
  const cookie = sessionCookie(added) as string
  t.ok(cookie, 'flashing stores the session')

  const shown = await setup.request('/show?type=info', cookie)
  t.same(shown.json(), ['saved'])
  t.same((await setup.request('/show?type=info', cookie)).json(), [], 'gone after it was shown')
  const stored = await setup.admin.get('sess:' + idOf(cookie)) as string
  t.notMatch(stored, '"flash"', 'an empty flash is removed from the record')
})

t.test('messages accumulate per type; taking one type leaves the others', async (t) => {
  const setup = await app(t)
  const cookie = sessionCookie(await setup.request('/add?type=info&message=one')) as string
  t.same((await setup.request('/add?type=info&message=two', cookie)).json(), { waiting: 2 })
  t.same((await setup.request('/add?type=error&message=bad', cookie)).json(), { waiting: 1 })
  t.same((await setup.request('/show?type=info', cookie)).json(), ['one', 'two'])
  t.same((await setup.request('/peek', cookie)).json(), { error: ['bad'] })
  t.same((await setup.request('/show?type=missing', cookie)).json(), [])
  t.same((await setup.request('/show?type=error', cookie)).json(), ['bad'])
  t.same((await setup.request('/show', cookie)).json(), {})
})

t.test('several arguments are joined with util.format; an array adds each', async (t) => {
  const setup = await app(t)
  const formatted = await setup.request('/add-formatted')
  t.same(formatted.json(), { waiting: 1 })
  const cookie = sessionCookie(formatted) as string
  t.same((await setup.request('/add-array', cookie)).json(), { waiting: 3 })
  t.same((await setup.request('/show?type=info', cookie)).json(), ['Hello Ada, you have 3 new messages extra', 'x', 'y'])
})

t.test('flashing without a message is an error', async (t) => {
  const setup = await app(t)
  const response = await setup.request('/add-nothing')
  t.equal(response.statusCode, 500)
  t.equal(sessionCookie(response), undefined)
})

t.test('reply.flash() takes every type at once', async (t) => {
  const setup = await app(t)
  const cookie = sessionCookie(await setup.request('/add?type=info&message=i')) as string
  await setup.request('/add?type=warn&message=w', cookie)
  t.same((await setup.request('/show', cookie)).json(), { info: ['i'], warn: ['w'] })
  t.same((await setup.request('/show', cookie)).json(), {}, 'all cleared')
  t.same((await setup.request('/peek?type=info', cookie)).json(), [])
})

t.test('peekFlash does not consume', async (t) => {
  const setup = await app(t)
  const cookie = sessionCookie(await setup.request('/add?type=info&message=kept')) as string
  const ran = await commandDelta(setup.admin, async () => {
    t.same((await setup.request('/peek?type=info', cookie)).json(), ['kept'])
    t.same((await setup.request('/peek', cookie)).json(), { info: ['kept'] })
  })
  t.notOk('set' in ran, 'peeking writes nothing')
  t.same((await setup.request('/show?type=info', cookie)).json(), ['kept'])
})

t.test('reading an empty flash on a new session stores nothing', async (t) => {
  const setup = await app(t)
  const before = await setup.admin.dbsize()
  for (const url of ['/show?type=info', '/show', '/peek', '/peek?type=info']) {
    let cookie: string | undefined = 'unset'
    const ran = await commandDelta(setup.admin, async () => { cookie = sessionCookie(await setup.request(url)) })
    t.equal(cookie, undefined, url + ': no cookie')
    t.same(ran, {}, url + ': no Redis command')
  }
  t.equal(await setup.admin.dbsize(), before, 'no key')
})

t.test('flash types named like Object.prototype members', async (t) => {
  const setup = await app(t)
  for (const type of ['constructor', 'toString', 'hasOwnProperty', '__proto__']) {
    t.same((await setup.request('/peek?type=' + type)).json(), [], type + ': nothing to peek on a new session')
    t.same((await setup.request('/show?type=' + type)).json(), [], type + ': nothing to show on a new session')
    const added = await setup.request(`/add?type=${type}&message=m`)
    t.same(added.json(), { waiting: 1 }, type + ': added')
    t.same((await setup.request('/show?type=' + type, sessionCookie(added))).json(), ['m'], type + ': shown')
  }
})

t.test('toJSON() leaves the flash out', async (t) => {
  const setup = await app(t)
  const body = (await setup.request('/json')).json()
  t.same(body.json, { user: 'ada' })
  t.same(body.keys.sort(), ['flash', 'user'], 'the flash is still data of the session')
})

t.test('a route without a session cannot flash', async (t) => {
  const setup = await app(t)
  const response = await setup.request('/no-session')
  t.equal(response.statusCode, 500)
  t.equal(sessionCookie(response), undefined)
})

t.test('a route without a session: the error says why', async (t) => {
  const errors: Error[] = []
  const setup = await app(t, (app) => {
    app.addHook('onError', async (request, reply, error) => { errors.push(error) })
  })
  t.equal((await setup.request('/no-session')).statusCode, 500)
  t.match(errors[0]?.message, /session: false/)
})

t.test('@fastify/flash registered after this plugin', async (t) => {
  let registered: Error | null | undefined
  const theirs = await app(t, (app) => {
    app.register(fastifyFlash).after((err) => { registered = err })
  })
  t.equal(registered, null, '@fastify/flash registers')
  const ours = await app(t)

  const fromOurs = sessionCookie(await ours.request('/add?type=info&message=ours')) as string
  t.same((await theirs.request('/show?type=info', fromOurs)).json(), ['ours'], 'theirs reads what ours stored')
  const key = 'sess:' + idOf(fromOurs)
  t.match(await theirs.admin.get(key), '"flash":{}', '@fastify/flash took it (it leaves an empty object)')

  t.same((await theirs.request('/add?type=warn&message=theirs', fromOurs)).json(), { waiting: 1 })
  t.match(await theirs.admin.get(key), '"flash":{"warn":["theirs"]}', 'the same { type: string[] } shape')
  t.same((await ours.request('/peek', fromOurs)).json(), { warn: ['theirs'] })
  t.same((await ours.request('/show?type=warn', fromOurs)).json(), ['theirs'], 'ours reads what theirs stored')
  t.same((await theirs.request('/show', fromOurs)).json(), {})

  const fromTheirs = sessionCookie(await theirs.request('/add-array')) as string
  t.ok(fromTheirs, 'a new session flashed by @fastify/flash is stored')
  t.same((await ours.request('/show', fromTheirs)).json(), { info: ['x', 'y'] })
})
