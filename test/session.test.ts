import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import redisSession from '../lib/index.js'
import { buildApp, idOf, privateRedis, SECRET, sessionCookie } from './helpers/app.js'

function routes (app: FastifyInstance): void {
  app.get('/api', async (request) => {
    const s = request.session
    s.set('a', 1).set('b', { nested: true })
    const before = { get: s.get('a'), missing: s.get('nope') ?? null, fallback: s.get('nope', 'dflt'), has: s.has('a') }
    s.set('b', undefined)
    const deleted = { hasB: s.has('b'), deleteMissing: s.delete('nope'), deleteA: s.delete('a') }
    s.set('kept', 'yes')
    return { before, deleted, keys: s.keys(), isNew: s.isNew, idLength: s.id.length, createdAt: typeof s.createdAt }
  })
  app.get('/props', async (request) => {
    const s = request.session
    s.user = { name: 'ada' }
    s._csrf = 'token'
    return { keys: Object.keys(s), viaGet: s.get('user'), json: s.toJSON() }
  })
  app.get('/swap', async (request) => {
    // same number of keys, another name: only a key-by-key comparison sees it
    delete request.session.kept
    request.session.swapped = 'yes'
    return {}
  })
  app.get('/show', async (request) => ({ data: request.session.toJSON(), isNew: request.session.isNew, createdAt: request.session.createdAt }))
  app.get('/reserved', async (request) => {
    const names = ['get', 'id', 'isNew', 'toJSON', 'constructor', '__proto__', 'hasOwnProperty']
    return names.map((name) => {
      try {
        request.session.set(name, 1)
        return 'accepted'
      } catch (err) {
        return (err as Error).name
      }
    })
  })
  app.get('/clear', async (request) => {
    request.session.clear()
    return { keys: request.session.keys() }
  })
  app.get('/regenerate', async (request) => {
    const before = request.session.id
    await request.session.regenerate(['keep'])
    return { changed: before !== request.session.id, keys: request.session.keys(), isNew: request.session.isNew }
  })
  app.get('/regenerate-afresh', async (request) => {
    request.flash('info', 'left behind')
    request.session.adjustTimeout(60)
    await request.session.regenerate()
    return { keys: request.session.keys() }
  })
  app.get('/regenerate-all', async (request) => {
    request.session.adjustTimeout(60)
    await request.session.regenerate(request.session.keys())
    return { keys: request.session.keys() }
  })
  app.get('/regenerate-then-destroy', async (request) => {
    await request.session.regenerate()
    await request.session.destroy()
    return {}
  })
  app.get('/destroy', async (request) => {
    await request.session.destroy()
    return { keys: request.session.keys(), isNew: request.session.isNew }
  })
  app.get('/destroy-and-write', async (request) => {
    await request.session.destroy()
    request.session.set('fresh', true)
    return {}
  })
  app.get('/seed', async (request) => {
    request.session.set('keep', 1)
    request.session.set('drop', 2)
    return {}
  })
  app.get('/opt-out', { config: { session: false } }, async (request) => ({ session: request.session }))
}

t.test('the Session API', async (t) => {
  const { request, admin } = await buildApp(t, {}, routes)

  t.test('get, set, has, delete, keys and metadata', async (t) => {
    const response = await request('/api')
    t.same(response.json(), {
      before: { get: 1, missing: null, fallback: 'dflt', has: true },
      deleted: { hasB: false, deleteMissing: false, deleteA: true },
      keys: ['kept'],
      isNew: true,
      idLength: 43,
      createdAt: 'number'
    })
    const cookie = sessionCookie(response) as string
    const stored = await admin.get('sess:' + idOf(cookie))
    t.match(stored, /\|\{"kept":"yes"\}$/)
    const next = (await request('/show', cookie)).json()
    t.same(next.data, { kept: 'yes' })
    t.equal(next.isNew, false)
  })

  t.test('property access works on the data, as @fastify/passport and @fastify/csrf-protection expect', async (t) => {
    const response = await request('/props')
    t.same(response.json(), { keys: ['user', '_csrf'], viaGet: { name: 'ada' }, json: { user: { name: 'ada' }, _csrf: 'token' } })
    const show = await request('/show', sessionCookie(response))
    t.same(show.json().data, { user: { name: 'ada' }, _csrf: 'token' }, 'property writes are saved')
  })

  t.test('renaming a key through property access is saved', async (t) => {
    const cookie = sessionCookie(await request('/api')) as string
    await request('/swap', cookie)
    t.same((await request('/show', cookie)).json().data, { swapped: 'yes' })
  })

  t.test('method and metadata names are reserved', async (t) => {
    const response = await request('/reserved')
    t.same(response.json(), Array(7).fill('TypeError'))
    t.equal(sessionCookie(response), undefined, 'nothing was stored')
  })

  t.test('reserved names in stored data are never loaded (no prototype pollution)', async (t) => {
    const cookie = sessionCookie(await request('/seed')) as string
    await admin.set('sess:' + idOf(cookie), ':1:|{"__proto__":{"polluted":true},"get":"x","constructor":1,"ok":1}', 'EX', 60)
    const show = await request('/show', cookie)
    t.same(show.json().data, { ok: 1 })
    t.equal(({} as Record<string, unknown>).polluted, undefined)
  })

  t.test('clear() empties and saves', async (t) => {
    const cookie = sessionCookie(await request('/seed')) as string
    t.same((await request('/clear', cookie)).json(), { keys: [] })
    t.same((await request('/show', cookie)).json().data, {})
  })

  t.test('regenerate(keep) gives a new id, keeps the listed keys and deletes the old record', async (t) => {
    const cookie = sessionCookie(await request('/seed')) as string
    const response = await request('/regenerate', cookie)
    t.same(response.json(), { changed: true, keys: ['keep'], isNew: true })
    const renewed = sessionCookie(response) as string
    t.not(idOf(renewed), idOf(cookie))
    t.equal(await admin.exists('sess:' + idOf(cookie)), 0, 'the old id is dead')
    t.same((await request('/show', renewed)).json().data, { keep: 1 })
    const old = await request('/show', cookie)
    t.equal(old.json().isNew, true, 'the old cookie gets a fresh, empty session')
  })

  t.test('regenerate() without keep starts afresh: no data, no flash, the configured timeout (issue 11, point 13)', async (t) => {
    const cookie = sessionCookie(await request('/seed')) as string
    const response = await request('/regenerate-afresh', cookie)
    t.same(response.json(), { keys: [] })
    t.equal(await admin.exists('sess:' + idOf(cookie)), 0, 'the old id is dead')
    const renewed = sessionCookie(response) as string
    t.same((await request('/show', renewed)).json().data, {}, 'the new session holds nothing of the old one')
    const ttl = await admin.ttl('sess:' + idOf(renewed))
    t.ok(ttl > 60, `the configured timeout, not the one adjusted before regenerate() (ttl ${ttl})`)
  })

  t.test('regenerate(session.keys()) keeps everything, its own timeout included', async (t) => {
    const cookie = sessionCookie(await request('/seed')) as string
    const response = await request('/regenerate-all', cookie)
    t.same(response.json(), { keys: ['keep', 'drop'] })
    const renewed = sessionCookie(response) as string
    t.same((await request('/show', renewed)).json().data, { keep: 1, drop: 2 })
    const ttl = await admin.ttl('sess:' + idOf(renewed))
    t.ok(ttl > 0 && ttl <= 60, `the own timeout went along (ttl ${ttl})`)
  })

  t.test('destroy() after regenerate() in the same request deletes the record regenerate() replaced', async (t) => {
    const cookie = sessionCookie(await request('/seed')) as string
    const response = await request('/regenerate-then-destroy', cookie)
    t.equal(await admin.exists('sess:' + idOf(cookie)), 0, 'the old record is gone, not left until its TTL')
    t.equal(sessionCookie(response), 'session=', 'the cookie is expired')
    t.same((await request('/show', cookie)).json().isNew, true, 'the old cookie opens nothing')
  })

  t.test('destroy() deletes the record and expires the cookie', async (t) => {
    const cookie = sessionCookie(await request('/seed')) as string
    const response = await request('/destroy', cookie)
    t.same(response.json(), { keys: [], isNew: true })
    t.match(response.headers['set-cookie'], /^session=; Path=\/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT/)
    t.equal(await admin.exists('sess:' + idOf(cookie)), 0)
  })

  t.test('destroy() then new data starts a new session with a new cookie', async (t) => {
    const cookie = sessionCookie(await request('/seed')) as string
    const renewed = sessionCookie(await request('/destroy-and-write', cookie)) as string
    t.not(idOf(renewed), idOf(cookie))
    t.same((await request('/show', renewed)).json().data, { fresh: true })
  })

  t.test('destroy() of a session never stored touches nothing', async (t) => {
    const response = await request('/destroy')
    t.equal(response.headers['set-cookie'], undefined)
  })

  t.test('routes with config.session false: no load, no save, no cookie', async (t) => {
    const cookie = sessionCookie(await request('/seed')) as string
    const response = await request('/opt-out', cookie)
    t.same(response.json(), { session: null })
    t.equal(response.headers['set-cookie'], undefined)
  })
})

t.test('detectChanges', async (t) => {
  const mutate = (app: FastifyInstance): void => {
    app.get('/seed', async (request) => {
      request.session.set('cart', { items: [] as string[] })
      return {}
    })
    app.get('/push', async (request) => {
      (request.session.get('cart') as { items: string[] }).items.push('x')
      return {}
    })
    app.get('/push-marked', async (request) => {
      (request.session.get('cart') as { items: string[] }).items.push('y')
      request.session.changed()
      return {}
    })
    app.get('/show', async (request) => request.session.toJSON())
  }

  t.test('on: a nested mutation is saved without changed()', async (t) => {
    const { request } = await buildApp(t, {}, mutate)
    const cookie = sessionCookie(await request('/seed'))
    await request('/push', cookie)
    t.same((await request('/show', cookie)).json(), { cart: { items: ['x'] } })
  })

  t.test('off: a nested mutation needs changed(); a top-level assignment is always seen', async (t) => {
    const { request } = await buildApp(t, { detectChanges: false }, mutate)
    const cookie = sessionCookie(await request('/seed'))
    await request('/push', cookie)
    t.same((await request('/show', cookie)).json(), { cart: { items: [] } })
    await request('/push-marked', cookie)
    t.same((await request('/show', cookie)).json(), { cart: { items: ['y'] } })
  })
})

t.test('decorator option and the store API', async (t) => {
  const { redis, admin } = await privateRedis(t)
  const app = Fastify()
  t.teardown(async () => await app.close())
  await app.register(redisSession, { secret: SECRET, url: redis.url, decorator: 'sess', cookieName: 'a' })
  await app.register(redisSession, { secret: SECRET, url: redis.url, prefix: 'other:', cookieName: 'b' })
  app.get('/', async (request) => {
    const both = request as unknown as Record<string, { set: (k: string, v: unknown) => void } | undefined>
    both.sess?.set('who', 'sess')
    both.session?.set('who', 'session')
    return { sess: typeof both.sess, session: typeof both.session }
  })
  const response = await app.inject('/')
  t.same(response.json(), { sess: 'object', session: 'object' }, 'each registration has its own decorator')
  const a = sessionCookie(response, 'a') as string
  const b = sessionCookie(response, 'b') as string
  t.match(await admin.get('sess:' + idOf(a)), /"who":"sess"/)
  t.match(await admin.get('other:' + idOf(b)), /"who":"session"/)

  const stores = app as unknown as Record<'sessStore' | 'sessionStore', typeof app.sessionStore>
  t.same(await stores.sessStore.get(idOf(a)), { who: 'sess' })
  t.equal(await stores.sessStore.get(idOf(b)), null, 'not in this registration\'s prefix')
  t.equal(await stores.sessStore.get('not an id'), null, 'malformed ids never reach Redis')
  await stores.sessionStore.ping()
  t.equal(stores.sessionStore.client.status, 'ready')
  await stores.sessStore.destroy(idOf(a))
  await stores.sessStore.destroy('not an id')
  t.equal(await admin.exists('sess:' + idOf(a)), 0)
})
