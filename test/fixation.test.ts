import t from 'tap'
import { randomBytes } from 'node:crypto'
import type { FastifyInstance, FastifyServerOptions, LightMyRequestResponse } from 'fastify'
import type { Redis } from 'ioredis'
import type { RedisSessionOptions } from '../lib/index.js'
import { CookieSigner } from '../lib/cookie.js'
import { bucketKeys, bucketOf } from '../lib/stores/buckets.js'
import { buildApp, idOf, privateRedis, SECRET, sessionCookie, setCookies, type TestApp } from './helpers/app.js'

// Session fixation and leakage: an id the client brings is never adopted, regenerate() kills the
// old id, no id ever reaches the logs, and every cookie carries the configured attributes.

type Layout = 'string' | 'hash' | 'bucketed'
const LAYOUTS: Layout[] = ['string', 'hash', 'bucketed']
const signer = new CookieSigner([SECRET])

/** An id of the right shape that nobody ever stored: what an attacker who could sign would plant. */
const plantedId = (): string => randomBytes(32).toString('base64url')

async function stored (admin: Redis, layout: Layout, id: string, prefix = 'sess:'): Promise<boolean> {
  if (layout === 'bucketed') return await admin.hexists(bucketKeys(prefix, bucketOf(id, 65536)).hash, id) === 1
  return await admin.exists(prefix + id) === 1
}

function routes (app: FastifyInstance): void {
  app.get('/read', async (request) => ({ isNew: request.session.isNew, data: request.session.toJSON() }))
  app.get('/write', async (request) => {
    request.session.set('n', (request.session.get('n') as number | undefined ?? 0) + 1)
    return { id: request.session.id }
  })
  app.get<{ Querystring: { keep?: string, owner?: string } }>('/login', async (request) => {
    await request.session.regenerate(request.query.keep === undefined ? undefined : [request.query.keep])
    request.session.set('user', 'ada')
    if (request.query.owner !== undefined) request.session.setOwner(request.query.owner)
    return { id: request.session.id }
  })
  app.get('/regenerate-twice', async (request) => {
    await request.session.regenerate(request.session.keys())
    const first = request.session.id
    await request.session.regenerate(request.session.keys())
    request.session.set('twice', true)
    return { first, id: request.session.id }
  })
  app.get('/destroy', async (request) => {
    await request.session.destroy()
    return {}
  })
}

const redis = await privateRedis(t)

for (const layout of LAYOUTS) {
  t.test(`${layout} layout: a signed id Redis does not know is never adopted`, async (t) => {
    const { request, admin } = await buildApp(t, { layout }, routes, {}, redis)
    const planted = plantedId()
    const cookie = 'session=' + signer.sign(planted)

    const read = await request('/read', cookie)
    t.same(read.json(), { isNew: true, data: {} })
    t.equal(read.headers['set-cookie'], undefined, 'a read neither stores nor sets a cookie')
    t.notOk(await stored(admin, layout, planted))

    const write = await request('/write', cookie)
    const given = sessionCookie(write) as string
    t.not(write.json().id, planted, 'the handler already sees another id')
    t.equal(idOf(given), write.json().id, 'and that is the id the cookie carries')
    t.notOk(await stored(admin, layout, planted), 'nothing is stored under the planted id')
    t.ok(await stored(admin, layout, idOf(given)))

    const concurrent = await Promise.all([request('/write', cookie), request('/write', cookie), request('/login', cookie)])
    const ids = concurrent.map((response) => idOf(sessionCookie(response) as string))
    t.equal(new Set([...ids, planted, idOf(given)]).size, 5, 'concurrent requests with the planted id each get an id of their own')
    t.notOk(await stored(admin, layout, planted))
    t.same((await request('/read', cookie)).json(), { isNew: true, data: {} }, 'the planted cookie still opens nothing')
  })

  t.test(`${layout} layout: regenerate() leaves the old id dead`, async (t) => {
    const { app, request, admin } = await buildApp(t, { layout, prefix: `regen-${layout}:` }, routes, {}, redis)
    const has = async (id: string): Promise<boolean> => await stored(admin, layout, id, `regen-${layout}:`)
    const before = sessionCookie(await request('/write')) as string
    const login = await request('/login?owner=ada', before)
    const after = sessionCookie(login) as string
    t.not(idOf(after), idOf(before))
    t.notOk(await has(idOf(before)), 'the old record is gone')
    t.same((await request('/read', after)).json(), { isNew: false, data: { user: 'ada' } }, 'the new id starts afresh: nothing of the visitor\'s data')
    t.same((await request('/read', before)).json(), { isNew: true, data: {} }, 'the old cookie opens a new empty session')
    const revived = sessionCookie(await request('/write', before)) as string
    t.not(idOf(revived), idOf(before), 'a write with the old cookie does not bring the old id back')
    t.not(idOf(revived), idOf(after))
    t.notOk(await has(idOf(before)))
    t.same((await app.sessionStore.listByOwner('ada')).map(({ id }) => id), [idOf(after)], 'the owner index lists the new id only')

    const kept = sessionCookie(await request('/login?owner=ada&keep=user', after)) as string
    t.same((await request('/read', kept)).json(), { isNew: false, data: { user: 'ada' } }, 'regenerate(keep) keeps only what is listed')
    t.notOk(await has(idOf(after)))
    t.same((await app.sessionStore.listByOwner('ada')).map(({ id }) => id), [idOf(kept)])

    const twice = await request('/regenerate-twice', kept)
    const final = sessionCookie(twice) as string
    t.equal(idOf(final), twice.json().id)
    t.notOk(await has(twice.json().first), 'an id regenerated away within the request is never stored')
    t.notOk(await has(idOf(kept)))
    t.ok(await has(idOf(final)))
    t.same((await request('/read', final)).json().data, { user: 'ada', twice: true })

    const fresh = sessionCookie(await request('/login?owner=ada')) as string
    t.ok(await has(idOf(fresh)), 'regenerate on a brand-new session just starts it')
    // awaited, this listing also lets the index prune that follows each login finish before the app closes
    t.same((await app.sessionStore.listByOwner('ada')).map(({ id }) => id).sort(), [idOf(final), idOf(fresh)].sort())
  })
}

t.test('LRU mode: a record past its stored expiry is not adopted', async (t) => {
  const { request, admin } = await buildApp(t, { redisTtl: false, prefix: 'lru-fix:' }, routes, {}, redis)
  const cookie = sessionCookie(await request('/write')) as string
  await admin.set('lru-fix:' + idOf(cookie), `:${Date.now() - 5000}:${Date.now() - 1000}|{"n":41}`)
  t.same((await request('/read', cookie)).json(), { isNew: true, data: {} })
  const renewed = sessionCookie(await request('/write', cookie)) as string
  t.not(idOf(renewed), idOf(cookie))
  t.equal(await admin.exists('lru-fix:' + idOf(cookie)), 0, 'the expired record is deleted with the save')
})

t.test('session ids never appear in the logs, at any level', async (t) => {
  for (const layout of LAYOUTS) {
    t.test(`${layout} layout`, async (t) => {
      const lines: string[] = []
      const { redis: server, admin } = await privateRedis(t)
      let release = (): void => {}
      const gate = new Promise<void>((resolve) => { release = resolve })
      const setup: TestApp = await buildApp(t, { layout, commandTimeout: 300, maxSize: 2000 }, (app) => {
        routes(app)
        app.get('/slow-write', async (request) => {
          await gate
          request.session.set('late', true)
          return {}
        })
        app.get('/pause-then-write', async (request) => {
          request.session.set('n', 99)
          server.pause()
          return {}
        })
        app.get('/too-large', async (request) => {
          request.session.set('blob', 'x'.repeat(5000))
          return {}
        })
        app.get('/flash', async (request, reply) => {
          request.flash('info', 'hello')
          return { messages: reply.flash('info') }
        })
      }, { logger: { level: 'trace', stream: { write: (line: string) => { lines.push(line) } } } }, { redis: server, admin })
      const { request } = setup
      const cookies: string[] = []
      const keep = (response: LightMyRequestResponse): LightMyRequestResponse => {
        for (const line of setCookies(response)) cookies.push(line.slice(0, line.indexOf(';')))
        return response
      }
      const statuses: number[] = []
      const go = async (url: string, cookie?: string): Promise<string | undefined> => {
        const response = keep(await request(url, cookie))
        statuses.push(response.statusCode)
        return sessionCookie(response)
      }

      // login, reads, writes, regenerate
      const first = await go('/write') as string
      await go('/read', first)
      await go('/write', first)
      await go('/flash', first)
      const user = await go('/login', first) as string
      await go('/read', user)
      await go('/read', first)
      const planted = plantedId()
      const fromPlanted = await go('/write', 'session=' + signer.sign(planted)) as string
      await go('/write', 'session=garbage.' + planted)
      // 503s: Redis paused while loading, and while saving
      server.pause()
      await go('/read', user)
      await go('/write', user)
      server.resume()
      await go('/pause-then-write', user)
      server.resume()
      // 500s: an undecodable record, a record of the wrong Redis type, a session too large
      const broken = await go('/write') as string
      const brokenKey = 'sess:' + idOf(broken)
      if (layout === 'bucketed') await admin.hset(bucketKeys('sess:', bucketOf(idOf(broken), 65536)).hash, idOf(broken), 'no header')
      else if (layout === 'hash') await admin.hdel(brokenKey, '__proto__')
      else await admin.set(brokenKey, 'no header')
      await go('/read', broken)
      if (layout !== 'bucketed') {
        const wrongType = await go('/write') as string
        await admin.del('sess:' + idOf(wrongType))
        await admin.rpush('sess:' + idOf(wrongType), 'a list, not a session')
        await go('/read', wrongType)
      }
      await go('/too-large', fromPlanted)
      // a lost race: a slow save after a destroy is dropped (logged at debug)
      const racer = await go('/write') as string
      const slow = request('/slow-write', racer).then(keep)
      await go('/destroy', racer)
      release()
      await slow
      await go('/destroy', user)
      await setup.app.close()

      const ids = new Set([planted, ...cookies.map((cookie) => idOf(cookie)).filter((id) => id.length === 43)])
      const signatures = cookies.map((cookie) => cookie.slice(cookie.lastIndexOf('.') + 1)).filter((s) => s.length === 43)
      t.ok(ids.size >= 7, `${ids.size} ids seen`)
      t.same([...new Set(statuses)].sort(), [200, 500, 503], 'the scenario went through successes, 500s and 503s')
      const levels = new Set(lines.map((line) => JSON.parse(line).level as number))
      // the logger takes everything from trace up; debug, info and error lines were written
      t.ok(levels.has(20) && levels.has(30) && levels.has(50), `levels written: ${[...levels].join(', ')}`)
      t.ok(lines.some((line) => line.includes('session save dropped')), 'the lost race was logged')
      t.ok(lines.some((line) => line.includes('FST_RS_STORE_UNAVAILABLE')), 'the 503s were logged')
      t.ok(lines.some((line) => line.includes('FST_RS_DECODE_FAILED')), 'the decode failure was logged')
      const leaks = lines.filter((line) => [...ids, ...signatures].some((secret) => line.includes(secret)))
      t.same(leaks, [], `none of ${lines.length} log lines holds an id or a signature`)
    })
  }
})

t.test('cookies carry HttpOnly, SameSite and Secure as configured, on every Set-Cookie', async (t) => {
  const OLD = 'an-old-secret-that-still-verifies-0123456789'
  const configs: Array<RedisSessionOptions['cookie']> = [
    {},
    { httpOnly: false, sameSite: 'strict', secure: true },
    { sameSite: 'none' },
    { sameSite: false, secure: false, maxAge: 60 },
    { sameSite: 'strict', secure: 'auto', partitioned: true, domain: 'example.com', maxAge: 3600 }
  ]
  const transports = [
    { name: 'http', trustProxy: false, headers: {}, https: false },
    { name: 'https behind a trusted proxy', trustProxy: true, headers: { 'x-forwarded-proto': 'https' }, https: true },
    { name: 'http behind a trusted proxy', trustProxy: true, headers: { 'x-forwarded-proto': 'http' }, https: false },
    { name: 'a spoofed X-Forwarded-Proto without trustProxy', trustProxy: false, headers: { 'x-forwarded-proto': 'https' }, https: false }
  ]
  const oldSigner = new CookieSigner([OLD])
  for (const cookie of configs) {
    const attributes = { httpOnly: true, sameSite: 'lax', secure: 'auto', ...cookie }
    for (const transport of transports) {
      t.test(`${JSON.stringify(cookie)} over ${transport.name}`, async (t) => {
        const serverOptions: FastifyServerOptions = { trustProxy: transport.trustProxy }
        const { app } = await buildApp(t, { cookie, secret: [SECRET, OLD] }, routes, serverOptions, redis)
        const go = async (url: string, session?: string): Promise<LightMyRequestResponse> =>
          await app.inject({ url, headers: { ...transport.headers, ...(session === undefined ? {} : { cookie: session }) } })
        const secure = attributes.secure === true || (attributes.secure === 'auto' && transport.https)
        const created = await go('/write')
        if (attributes.sameSite === 'none' && !secure) {
          t.same(setCookies(created), [], 'browsers refuse SameSite=None without Secure: no new session (test/cookie-delivery.test.ts)')
          return
        }
        const session = sessionCookie(created) as string
        const responses = [
          created,
          await go('/read', session),
          await go('/read', 'session=' + oldSigner.sign(idOf(session))),
          await go('/login', session),
          await go('/destroy', sessionCookie(await go('/write')))
        ]
        const lines = responses.flatMap(setCookies)
        t.ok(lines.length >= 4, `${lines.length} Set-Cookie lines: new, re-signed, regenerated, expired`)
        const sameSite = attributes.sameSite === false ? undefined : { lax: 'Lax', strict: 'Strict', none: 'None' }[attributes.sameSite]
        for (const line of lines) {
          const parts = line.split('; ').slice(1)
          t.equal(parts.includes('HttpOnly'), attributes.httpOnly, `HttpOnly in ${line}`)
          t.equal(parts.includes('Secure'), secure, `Secure in ${line}`)
          t.same(parts.filter((part) => part.startsWith('SameSite=')), sameSite === undefined ? [] : ['SameSite=' + sameSite], `SameSite in ${line}`)
          t.ok(parts.includes('Path=/'), `Path in ${line}`)
          if (cookie?.domain !== undefined) t.ok(parts.includes('Domain=' + cookie.domain))
          t.equal(parts.includes('Partitioned'), cookie?.partitioned === true)
        }
      })
    }
  }
})
