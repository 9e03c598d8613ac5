import t, { type Test } from 'tap'
import { createHmac } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { createRequire } from 'node:module'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import Fastify, { type FastifyInstance, type FastifyPluginCallback, type InjectOptions, type LightMyRequestResponse } from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fastifyPassport from '@fastify/passport'
import fastifyFormbody from '@fastify/formbody'
import { Strategy as LocalStrategy } from 'passport-local'
import { RedisStore } from 'connect-redis'
import { createClient } from 'redis'
import type { RedisSessionOptions } from '../lib/index.js'
import { commandDelta } from './helpers/index.js'
import { buildApp, idOf, privateRedis, recordTraffic, sessionCookie, setCookies, type TestApp } from './helpers/app.js'

// The old apps are the real thing: @fastify/session 11 and express-session with connect-redis 9
// on its own client (node-redis), writing to the Redis this plugin then takes the sessions over from.
// loaded untyped: @fastify/session's declaration merging would retype request.session for every
// test; express-session comes with connect-redis (its peer dependency) but without types
const require = createRequire(import.meta.url)
const fastifySession = require('@fastify/session') as FastifyPluginCallback<Record<string, unknown>>
type Middleware = (req: IncomingMessage, res: ServerResponse, next: () => void) => void
const expressSession = require('express-session') as (options: object) => Middleware

const OLD_SECRET = 'the-old-fastify-session-secret-0123456789'
const EXPRESS_SECRET = 'keyboard cat'
const FASTIFY_SESSION = { cookieName: 'sessionId', secret: OLD_SECRET }
const EXPRESS = { cookieName: 'connect.sid', secret: ['a newer secret', EXPRESS_SECRET], cookiePrefix: 's:' }

const shared = await privateRedis(t)
const nodeRedis = createClient({ url: shared.redis.url })
await nodeRedis.connect()
t.teardown(async () => { await nodeRedis.close() })
const oldStore = new RedisStore({ client: nodeRedis })

interface User { id: string, name: string }
const users = new Map<string, User>([['1', { id: '1', name: 'ada' }]])

/** The @fastify/passport set-up of test/passport.test.ts, on whichever session plugin the app has. */
function passportRoutes (app: FastifyInstance): void {
  const passport = new fastifyPassport.Authenticator()
  passport.use('local', new LocalStrategy((username, password, done) => {
    const user = [...users.values()].find((user) => user.name === username)
    done(null, user !== undefined && password === 'lovelace' ? user : false)
  }))
  passport.registerUserSerializer(async (user: User) => user.id)
  passport.registerUserDeserializer(async (id: string) => users.get(id) ?? null)
  app.register(fastifyFormbody)
  app.register(passport.initialize())
  app.register(passport.secureSession())
  app.register(async (app) => {
    app.post('/login', { preValidation: passport.authenticate('local') }, async (request) => ({ user: (request.user as User).name }))
    app.post('/logout', async (request) => {
      await request.logout()
      return {}
    })
    app.get('/me', async (request) => ({ user: (request.user as User | undefined)?.name ?? null, cart: request.session.get('cart') ?? null }))
    app.get('/cart/:item', async (request) => {
      request.session.set('cart', [(request.params as { item: string }).item])
      return {}
    })
    app.get('/untouched', async () => ({}))
    app.get('/destroy', async (request) => {
      await request.session.destroy()
      return {}
    })
  })
}

const loginForm = (cookie?: string): InjectOptions => ({
  method: 'POST',
  url: '/login',
  headers: { 'content-type': 'application/x-www-form-urlencoded', ...(cookie === undefined ? {} : { cookie }) },
  payload: 'username=ada&password=lovelace'
})

/** The app being replaced: @fastify/session 11 with connect-redis 9, as their READMEs set them up. */
const oldApp = Fastify()
oldApp.register(fastifyCookie)
oldApp.register(fastifySession, { secret: OLD_SECRET, cookie: { secure: false }, saveUninitialized: false, store: oldStore })
passportRoutes(oldApp)
await oldApp.ready()
t.teardown(async () => await oldApp.close())

/** Logs in on the old app, puts `cart` in the session, and returns the old cookie as the browser sends it. */
async function oldLogin (cart?: string): Promise<string> {
  const login = await oldApp.inject(loginForm())
  const cookie = sessionCookie(login, 'sessionId') as string
  if (cart !== undefined) await oldApp.inject({ url: `/cart/${cart}`, headers: { cookie } })
  return cookie
}

/** The old session's id inside a `sessionId=<id>.<signature>` pair, URL-encoded as @fastify/cookie sends it. */
const oldId = (cookie: string): string => idOf(decodeURIComponent(cookie))

async function newApp (t: Test, options: Partial<RedisSessionOptions> = {}): Promise<TestApp> {
  return await buildApp(t, { migrateFrom: FASTIFY_SESSION, ...options }, passportRoutes, {}, shared)
}

/** The expiring Set-Cookie line of the old cookie, if the response has one. */
function expiredOldCookie (response: LightMyRequestResponse, name = 'sessionId'): string | undefined {
  return setCookies(response).find((line) => line.startsWith(name + '=;'))
}

/** express-session's cookie: `s:` + the value signed as cookie-signature does, URL-encoded. */
function expressCookie (sid: string, secret = EXPRESS_SECRET): string {
  const signed = sid + '.' + createHmac('sha256', secret).update(sid).digest('base64').replace(/=+$/, '')
  return 'connect.sid=' + encodeURIComponent('s:' + signed)
}

/** A record as connect-redis writes it for express-session. */
async function expressRecord (sid: string, data: Record<string, unknown>, cookie: Record<string, unknown> = {}): Promise<void> {
  await oldStore.set(sid, { cookie: { originalMaxAge: null, httpOnly: true, path: '/', ...cookie }, ...data } as never)
}

const sids = { next: 0 }
const newSid = (): string => `express-sid-${process.pid}-${sids.next++}`

t.test('a @fastify/session login is taken over in two round trips, without the handler touching the session', async (t) => {
  const setup = await newApp(t)
  const old = await oldLogin('tea')
  const oldKey = 'sess:' + oldId(old)
  t.match(JSON.parse(await setup.admin.get(oldKey) as string), { cookie: { path: '/' }, passport: '1', cart: ['tea'] }, 'connect-redis wrote the session')

  const traffic = recordTraffic(setup.app.sessionStore.client)
  let response: LightMyRequestResponse | undefined
  const ran = await commandDelta(setup.admin, async () => { response = await setup.request('/untouched', old) })
  t.equal(traffic.roundTrips, 2)
  t.same(traffic.commands, ['get', 'set', 'del'])
  t.same(ran, { get: 1, set: 1, del: 1 })

  const ours = sessionCookie(response as LightMyRequestResponse) as string
  t.ok(ours, 'our cookie is set')
  t.match(expiredOldCookie(response as LightMyRequestResponse), /^sessionId=; Path=\/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT/, 'the old cookie is expired')
  t.equal(await setup.admin.exists(oldKey), 0, 'the old record is gone')
  t.same(await setup.app.sessionStore.get(idOf(ours)), { passport: '1', cart: ['tea'] }, 'stored in our format, without the old cookie member')
  t.ok(await setup.admin.ttl('sess:' + idOf(ours)) > 1000, 'with our timeout')

  traffic.reset()
  const me = await setup.request('/me', ours)
  t.same(me.json(), { user: 'ada', cart: ['tea'] }, 'still logged in with @fastify/passport')
  t.equal(traffic.roundTrips, 1, 'from then on a read is one round trip')
})

t.test('the taken-over session is what the handler sees, and its changes are stored', async (t) => {
  const setup = await newApp(t)
  const old = await oldLogin()
  t.same((await setup.request('/me', old)).json(), { user: 'ada', cart: null })
  const other = await oldLogin()
  const response = await setup.request('/cart/scones', other)
  t.same(await setup.app.sessionStore.get(idOf(sessionCookie(response) as string)), { passport: '1', cart: ['scones'] })
})

t.test('a passport login on the new app with an old cookie: regenerated, the old record deleted with the save', async (t) => {
  const setup = await newApp(t)
  const old = await oldLogin('tea')
  const response = await setup.app.inject(loginForm(old))
  t.same(response.json(), { user: 'ada' })
  t.equal(await setup.admin.exists('sess:' + oldId(old)), 0)
  t.ok(expiredOldCookie(response))
  t.same((await setup.request('/me', sessionCookie(response))).json(), { user: 'ada', cart: null }, 'a login starts afresh, as before the switch')
})

t.test('logout (destroy) on the request that takes over: the old record and cookie go, no session of ours is made', async (t) => {
  const setup = await newApp(t)
  for (const url of ['/destroy', '/logout']) {
    const old = await oldLogin()
    const response = await setup.request(url, old, url === '/logout' ? 'POST' : 'GET')
    t.equal(response.statusCode, 200)
    t.equal(await setup.admin.exists('sess:' + oldId(old)), 0, `${url}: old record deleted`)
    t.ok(expiredOldCookie(response), `${url}: old cookie expired`)
    if (url === '/destroy') t.equal(sessionCookie(response), undefined, 'nothing of ours stored')
    t.same((await setup.request('/me', old)).json(), { user: null, cart: null }, `${url}: the old cookie no longer logs in`)
  }
})

t.test('express-session cookies (s: prefix, URL-encoded) and records written by connect-redis', async (t) => {
  const setup = await buildApp(t, { migrateFrom: EXPRESS }, passportRoutes, {}, shared)
  const sid = newSid()
  await expressRecord(sid, { cart: ['jam'] })
  const cookie = expressCookie(sid)
  t.match(cookie, /^connect\.sid=s%3A/)
  const traffic = recordTraffic(setup.app.sessionStore.client)
  const response = await setup.request('/me', cookie)
  t.same(response.json(), { user: null, cart: ['jam'] })
  t.same(traffic.commands, ['get', 'set', 'del'])
  t.equal(traffic.roundTrips, 2)
  t.ok(expiredOldCookie(response, 'connect.sid'))
  t.equal(await setup.admin.exists('sess:' + sid), 0)

  const older = newSid()
  await expressRecord(older, { cart: ['tea'] })
  const resigned = await setup.request('/me', expressCookie(older, 'a newer secret'))
  t.same(resigned.json(), { user: null, cart: ['tea'] }, 'any of the old secrets verifies')
})

t.test('express-session itself (on node:http) with connect-redis: its cookie is taken over', async (t) => {
  const middleware = expressSession({ secret: EXPRESS_SECRET, resave: false, saveUninitialized: false, store: oldStore })
  const server = createServer((req, res) => {
    middleware(req, res, () => {
      (req as unknown as { session: Record<string, unknown> }).session.cart = ['marmalade']
      res.end('ok')
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  const reply = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`)
  const cookie = (reply.headers.get('set-cookie') as string).split(';')[0]
  t.match(cookie, /^connect\.sid=s%3A/)

  const setup = await buildApp(t, { migrateFrom: EXPRESS }, passportRoutes, {}, shared)
  const response = await setup.request('/me', cookie)
  t.same(response.json(), { user: null, cart: ['marmalade'] })
  t.ok(sessionCookie(response))
  t.ok(expiredOldCookie(response, 'connect.sid'))
})

t.test('a bad signature or a malformed old cookie never reaches Redis, and is left alone', async (t) => {
  const setup = await newApp(t)
  const old = await oldLogin()
  const value = old.slice(old.indexOf('=') + 1)
  const bad = [
    old.slice(0, -3) + (old.endsWith('AAA') ? 'BBB' : 'AAA'),
    'sessionId=' + oldId(old),
    'sessionId=' + oldId(old) + '.',
    'sessionId=.' + value.slice(value.lastIndexOf('.') + 1),
    'sessionId=%E0%A4%A',
    'sessionId=',
    expressCookie('sid').replace('connect.sid', 'sessionId')
  ]
  const traffic = recordTraffic(setup.app.sessionStore.client)
  for (const cookie of bad) {
    let response: LightMyRequestResponse | undefined
    t.same(await commandDelta(setup.admin, async () => { response = await setup.request('/me', cookie) }), {}, cookie)
    t.same((response as LightMyRequestResponse).json(), { user: null, cart: null })
    t.same(setCookies(response as LightMyRequestResponse), [], 'no Set-Cookie')
  }
  t.equal(traffic.roundTrips, 0)
  t.ok(await setup.admin.exists('sess:' + oldId(old)), 'the old session is still there')
})

t.test('a missing, expired or foreign old record: a fresh session, and the old cookie expired', async (t) => {
  const setup = await newApp(t, { migrateFrom: EXPRESS, layout: 'hash' })
  const records: Array<[string, (key: string) => Promise<unknown>]> = [
    ['missing', async () => {}],
    // connect-redis with disableTTL leaves such records behind (with a TTL it deletes them)
    ['expired by its cookie', async (key) => await setup.admin.set(key, JSON.stringify({ cookie: { path: '/', expires: new Date(Date.now() - 1000) }, cart: ['old'] }))],
    ['not JSON', async (key) => await setup.admin.set(key, 'user=ada')],
    ['a JSON array', async (key) => await setup.admin.set(key, '[{"cookie":{}}]')],
    ['an object without cookie', async (key) => await setup.admin.set(key, '{"cart":["old"]}')],
    ['cookie not an object', async (key) => await setup.admin.set(key, '{"cookie":"x","cart":["old"]}')],
    ['a hash (WRONGTYPE)', async (key) => await setup.admin.hset(key, 'cookie', '{}')]
  ]
  for (const [what, write] of records) {
    const sid = newSid()
    await write('sess:' + sid)
    const traffic = recordTraffic(setup.app.sessionStore.client)
    const read = await setup.request('/me', expressCookie(sid))
    t.same(read.json(), { user: null, cart: null }, `${what}: a fresh session`)
    t.same(traffic.commands, ['get'], `${what}: one GET`)
    t.same(setCookies(read).length, 1)
    t.ok(expiredOldCookie(read, 'connect.sid'), `${what}: the old cookie expired`)
    const written = await setup.request('/cart/fresh', expressCookie(sid))
    t.same(await setup.app.sessionStore.get(idOf(sessionCookie(written) as string)), { cart: ['fresh'] }, `${what}: a write stores a new session`)
    t.ok(expiredOldCookie(written, 'connect.sid'))
  }
})

t.test('the old cookie is expired in the scope its record names', async (t) => {
  const setup = await newApp(t, { migrateFrom: EXPRESS })
  const scoped = newSid()
  await expressRecord(scoped, { cart: ['a'] }, { path: '/shop', domain: 'example.com' })
  t.match(expiredOldCookie(await setup.request('/me', expressCookie(scoped)), 'connect.sid'), /^connect\.sid=; Path=\/shop; Domain=example\.com; Max-Age=0/)
  const odd = newSid()
  await expressRecord(odd, { cart: ['a'] }, { path: '/a; Secure', domain: 'x y' })
  t.match(expiredOldCookie(await setup.request('/me', expressCookie(odd)), 'connect.sid'), /^connect\.sid=; Path=\/; Max-Age=0/, 'what a header cannot carry falls back to /')
  const https = newSid()
  await expressRecord(https, { cart: ['a'] }, { expires: new Date(Date.now() + 60_000).toISOString() })
  const secure = await setup.app.inject({ url: '/me', headers: { cookie: expressCookie(https), 'x-forwarded-proto': 'https' } })
  t.same(secure.json(), { user: null, cart: ['a'] })
})

t.test('with both cookies, ours wins and the old one is expired, at no Redis cost', async (t) => {
  const setup = await newApp(t)
  const ours = sessionCookie(await setup.request('/cart/ours')) as string
  const old = await oldLogin('theirs')
  const traffic = recordTraffic(setup.app.sessionStore.client)
  const response = await setup.request('/me', `${old}; ${ours}`)
  t.same(response.json(), { user: null, cart: ['ours'] })
  t.same(traffic.commands, ['getex'])
  t.ok(expiredOldCookie(response))
  t.ok(await setup.admin.exists('sess:' + oldId(old)), 'the old record is left to its TTL')
  const tampered = await setup.request('/me', `${old.slice(0, -2)}xx; ${ours}`)
  t.same(setCookies(tampered), [], 'an old cookie that does not verify is left alone')
})

t.test('shouldSetCookie false: nothing is migrated', async (t) => {
  const setup = await newApp(t, { shouldSetCookie: () => false, prefix: 'nocookie:' })
  const old = await oldLogin('tea')
  const response = await setup.request('/cart/jam', old)
  t.same(setCookies(response), [])
  t.match(JSON.parse(await setup.admin.get('sess:' + oldId(old)) as string), { cart: ['tea'] }, 'the old record is untouched')
  t.same(await setup.admin.keys('nocookie:*'), [], 'no session of ours')
})

t.test('a browser that could not keep our cookie keeps the old one', async (t) => {
  const setup = await newApp(t, { cookie: { secure: true } })
  const old = await oldLogin()
  const response = await setup.app.inject({ url: '/me', headers: { cookie: old, host: 'example.com' } })
  t.same(response.json(), { user: 'ada', cart: null })
  t.same(setCookies(response), [])
  t.ok(await setup.admin.exists('sess:' + oldId(old)))
})

t.test('two concurrent requests with the same old cookie: both logged in, the browser keeps either', async (t) => {
  const setup = await newApp(t)
  const old = await oldLogin('tea')
  const responses = await Promise.all([setup.request('/me', old), setup.request('/me', old)])
  for (const response of responses) {
    t.same(response.json(), { user: 'ada', cart: ['tea'] })
    t.ok(expiredOldCookie(response))
  }
  const cookies = responses.map((response) => sessionCookie(response) as string)
  t.not(cookies[0], cookies[1], 'two sessions of ours')
  for (const cookie of cookies) t.same((await setup.request('/me', cookie)).json(), { user: 'ada', cart: ['tea'] }, 'each holds the login')
  t.equal(await setup.admin.exists('sess:' + oldId(old)), 0)
})

t.test('every layout takes over', async (t) => {
  for (const layout of ['hash', 'bucketed'] as const) {
    const setup = await newApp(t, { layout, prefix: 'ours:', buckets: layout === 'bucketed' ? 4 : undefined })
    const old = await oldLogin('tea')
    const traffic = recordTraffic(setup.app.sessionStore.client)
    const response = await setup.request('/me', old)
    t.same(response.json(), { user: 'ada', cart: ['tea'] }, layout)
    t.equal(traffic.roundTrips, 2, `${layout}: two round trips`)
    t.equal(await setup.admin.exists('sess:' + oldId(old)), 0)
    t.same((await setup.request('/me', sessionCookie(response))).json(), { user: 'ada', cart: ['tea'] })
  }
})

t.test('Redis not answering the old record\'s GET: 503', async (t) => {
  const setup = await newApp(t, { commandTimeout: 100 })
  const old = await oldLogin()
  const pauser = setup.redis.admin()
  t.teardown(() => pauser.disconnect())
  await pauser.call('CLIENT', 'PAUSE', '300', 'ALL')
  const response = await setup.request('/me', old)
  t.equal(response.statusCode, 503)
  t.equal(response.json().code, 'FST_RS_STORE_UNAVAILABLE')
  await pauser.ping() // answered once the pause is over, so the app closes cleanly
})

t.test('a bad old cookie is logged once, as a hint at the migrateFrom settings', async (t) => {
  const lines: string[] = []
  const setup = await buildApp(t, { migrateFrom: FASTIFY_SESSION }, passportRoutes, {
    logger: { level: 'warn', stream: { write: (line: string) => lines.push(line) } }
  }, shared)
  await setup.request('/me', 'sessionId=nope')
  await setup.request('/me', 'sessionId=nope.either')
  t.equal(lines.length, 1)
  t.match(JSON.parse(lines[0]).msg, /migrateFrom\.secret/)
  t.notMatch(lines[0], /nope/, 'the cookie value is not logged')
})
