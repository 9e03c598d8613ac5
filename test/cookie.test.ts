import t, { type Test } from 'tap'
import fc from 'fast-check'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import type { RedisSessionOptions } from '../lib/index.js'
import { CookieSigner } from '../lib/cookie.js'
import { commandDelta } from './helpers/index.js'
import { buildApp, counterRoutes, idOf, privateRedis, SECRET, sessionCookie, setCookies, type TestApp } from './helpers/app.js'

function routes (app: FastifyInstance): void {
  counterRoutes(app)
  app.get('/destroy', async (request) => {
    await request.session.destroy()
    return {}
  })
}

/** The one Set-Cookie line of the session cookie, with its attributes after the value. */
function attributesOf (response: LightMyRequestResponse, name = 'session'): string {
  const lines = setCookies(response).filter((line) => line.startsWith(name + '='))
  if (lines.length !== 1) throw new Error(`expected one ${name} cookie, got ${JSON.stringify(lines)}`)
  return lines[0].slice(lines[0].indexOf(';'))
}

const redis = await privateRedis(t)
const app = async (t: Test, options: Partial<RedisSessionOptions> = {}, serverOptions = {}): Promise<TestApp> =>
  await buildApp(t, options, routes, serverOptions, redis)

t.test('default attributes: Path=/; HttpOnly; SameSite=Lax, not Secure over http', async (t) => {
  const setup = await app(t)
  const response = await setup.request('/write')
  t.equal(attributesOf(response), '; Path=/; HttpOnly; SameSite=Lax')
  t.match(sessionCookie(response), /^session=[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{43}$/)
})

t.test('cookie options merge with the defaults', async (t) => {
  const cases: Array<[Partial<RedisSessionOptions['cookie']>, string]> = [
    [{ domain: 'example.com', maxAge: 3600 }, '; Path=/; Domain=example.com; Max-Age=3600; HttpOnly; SameSite=Lax'],
    [{ partitioned: true, secure: true, sameSite: 'none' }, '; Path=/; HttpOnly; Secure; SameSite=None; Partitioned'],
    [{ path: '/app' }, '; Path=/app; HttpOnly; SameSite=Lax'],
    [{ sameSite: 'strict' }, '; Path=/; HttpOnly; SameSite=Strict'],
    [{ sameSite: false }, '; Path=/; HttpOnly'],
    [{ httpOnly: false }, '; Path=/; SameSite=Lax'],
    [{ secure: true }, '; Path=/; HttpOnly; Secure; SameSite=Lax'],
    [{ sameSite: 'none', secure: true }, '; Path=/; HttpOnly; Secure; SameSite=None']
  ]
  for (const [cookie, expected] of cases) {
    const setup = await app(t, { cookie })
    t.equal(attributesOf(await setup.request('/write')), expected, JSON.stringify(cookie))
  }
})

t.test('secure: "auto" follows request.protocol', async (t) => {
  const behindProxy = await app(t, {}, { trustProxy: true })
  const https = await behindProxy.app.inject({ url: '/write', headers: { 'x-forwarded-proto': 'https' } })
  t.equal(attributesOf(https), '; Path=/; HttpOnly; Secure; SameSite=Lax', 'trusted proxy says https')
  t.equal(attributesOf(await behindProxy.request('/write')), '; Path=/; HttpOnly; SameSite=Lax', 'plain http')

  const direct = await app(t)
  const spoofed = await direct.app.inject({ url: '/write', headers: { 'x-forwarded-proto': 'https' } })
  t.equal(attributesOf(spoofed), '; Path=/; HttpOnly; SameSite=Lax', 'the header is ignored without trustProxy')

  const none = await app(t, { cookie: { sameSite: 'none' } }, { trustProxy: true })
  const cross = await none.app.inject({ url: '/write', headers: { 'x-forwarded-proto': 'https' } })
  t.equal(attributesOf(cross), '; Path=/; HttpOnly; Secure; SameSite=None')

  const explicit = await app(t, { cookie: { secure: false } }, { trustProxy: true })
  const insecure = await explicit.app.inject({ url: '/write', headers: { 'x-forwarded-proto': 'https' } })
  t.equal(attributesOf(insecure), '; Path=/; HttpOnly; SameSite=Lax', 'secure: false wins over https')
})

t.test('cookieName', async (t) => {
  const setup = await app(t, { cookieName: 'sid' })
  const response = await setup.request('/write')
  t.equal(sessionCookie(response), undefined, 'no cookie called session')
  const cookie = sessionCookie(response, 'sid') as string
  t.ok(cookie)
  t.same((await setup.request('/read', cookie)).json(), { n: 1, isNew: false })
  const renamed = 'session=' + cookie.slice('sid='.length)
  t.same((await setup.request('/read', renamed)).json(), { n: null, isNew: true }, 'the same value under another name is no session')
})

t.test('the session cookie among others in the Cookie header', async (t) => {
  const setup = await app(t)
  const cookie = sessionCookie(await setup.request('/write')) as string
  const value = cookie.slice('session='.length)
  const headers = [
    `a=1; ${cookie}; b=2`,
    `a=1;${cookie};b=2`,
    `  ${cookie}  `,
    `a=1;    session =  ${value}   ; b=2`,
    `xsession=nope; sessionx=nope; ${cookie}`,
    `flag; other="x;y"; ${cookie}`,
    `=empty; ${cookie}`,
    `${cookie}; session=second-is-ignored`
  ]
  for (const header of headers) {
    t.same((await setup.request('/read', header)).json(), { n: 1, isNew: false }, header)
  }
  for (const header of [`xsession=${value}`, `sessionx=${value}`, `session=wrong; ${cookie}`]) {
    t.same((await setup.request('/read', header)).json(), { n: null, isNew: true }, header)
  }
})

t.test('secret rotation: an old signature is accepted and re-signed with the first secret', async (t) => {
  const OLD = SECRET
  const NEW = 'a-brand-new-secret-that-is-long-enough-9876543210'
  const before = await app(t, { secret: OLD })
  const after = await app(t, { secret: [NEW, OLD] })
  const oldCookie = sessionCookie(await before.request('/write')) as string
  let response: LightMyRequestResponse | undefined
  const ran = await commandDelta(redis.admin, async () => { response = await after.request('/read', oldCookie) })
  const read = response as LightMyRequestResponse
  t.same(read.json(), { n: 1, isNew: false }, 'the old signature is accepted')
  t.same(ran, { getex: 1 }, 're-signing does not rewrite the record')
  const resigned = sessionCookie(read) as string
  t.ok(resigned, 'a read-only response re-signs the cookie')
  t.equal(idOf(resigned), idOf(oldCookie), 'same session id')
  t.same(new CookieSigner([NEW]).verify(resigned.slice('session='.length)), { id: idOf(oldCookie), value: resigned.slice('session='.length), stale: false }, 'signed with the first secret')
  t.equal(attributesOf(read), '; Path=/; HttpOnly; SameSite=Lax')

  const again = await after.request('/read', resigned)
  t.same(again.json(), { n: 1, isNew: false })
  t.equal(again.headers['set-cookie'], undefined, 'a current signature needs no new cookie')
  t.same((await before.request('/read', resigned)).json(), { n: null, isNew: true }, 'the old app does not know the new secret')

  const written = await after.request('/write', oldCookie)
  t.same(written.json(), { n: 2 })
  t.equal(sessionCookie(written), resigned, 'a write re-signs too')
})

t.test('read-only responses of an existing session', async (t) => {
  const plain = await app(t)
  const cookie = sessionCookie(await plain.request('/write')) as string
  const read = await plain.request('/read', cookie)
  t.same(read.json(), { n: 1, isNew: false })
  t.equal(read.headers['set-cookie'], undefined, 'no Set-Cookie without maxAge')
  const written = await plain.request('/write', cookie)
  t.equal(written.headers['set-cookie'], undefined, 'nor after a write to an existing session')

  const sliding = await app(t, { cookie: { maxAge: 600 } })
  const slidingCookie = sessionCookie(await sliding.request('/write')) as string
  const slid = await sliding.request('/read', slidingCookie)
  t.equal(sessionCookie(slid), slidingCookie, 'with maxAge the same cookie is sent again')
  t.equal(attributesOf(slid), '; Path=/; Max-Age=600; HttpOnly; SameSite=Lax', 'so the browser slides its expiry')
  t.equal(sessionCookie(await sliding.request('/write', slidingCookie)), slidingCookie)
})

t.test('destroy expires the cookie with the same path and domain', async (t) => {
  const setup = await app(t, { cookie: { domain: 'example.com', path: '/' } })
  const cookie = sessionCookie(await setup.request('/write')) as string
  const response = await setup.request('/destroy', cookie)
  t.equal(setCookies(response).length, 1)
  t.equal(setCookies(response)[0], 'session=; Path=/; Domain=example.com; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; SameSite=Lax')
  t.equal(await setup.admin.exists('sess:' + idOf(cookie)), 0)
  const fresh = await setup.request('/destroy')
  t.equal(fresh.headers['set-cookie'], undefined, 'no cookie to expire on a request without one')
})

t.test('a validly signed cookie for a session that is gone', async (t) => {
  const setup = await app(t)
  const cookie = sessionCookie(await setup.request('/write')) as string
  await setup.admin.del('sess:' + idOf(cookie))
  const response = await setup.request('/read', cookie)
  t.same(response.json(), { n: null, isNew: true })
  t.equal(response.headers['set-cookie'], undefined, 'nothing stored, nothing sent')
  const written = await setup.request('/write', cookie)
  t.not(idOf(sessionCookie(written) as string), idOf(cookie), 'a write gets a new id, never the one the client chose')
})

t.test('a bad cookie costs no Redis command and is never echoed back', async (t) => {
  const setup = await app(t)
  const value = (sessionCookie(await setup.request('/write')) as string).slice('session='.length)
  const id = value.slice(0, 43)
  const signature = value.slice(44)
  const foreign = new CookieSigner(['a-secret-this-app-has-never-heard-of-0000']).sign(id)
  const flip = (s: string, i: number): string => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1)

  const check = async (bad: string): Promise<string | undefined> => {
    let read: LightMyRequestResponse | undefined
    const ran = await commandDelta(setup.admin, async () => { read = await setup.request('/read', 'session=' + bad) })
    if (Object.keys(ran).length > 0) return `ran ${JSON.stringify(ran)}`
    if (read?.headers['set-cookie'] !== undefined) return 'a read answered with Set-Cookie'
    if (read?.json().isNew !== true) return 'the session was loaded'
    const write = await setup.request('/write', 'session=' + bad)
    const fresh = sessionCookie(write)
    if (fresh === undefined) return 'a write set no cookie'
    if (fresh === 'session=' + bad || (bad.length > 0 && bad.includes(idOf(fresh)))) return 'echoed: ' + fresh
    if (write.json().n !== 1) return 'a write continued the old session'
    return undefined
  }

  const crafted = [
    '', 'garbage', id, id + '.', '.' + signature, value + '.', value + '.' + signature,
    flip(value, 0), flip(value, 42), flip(value, 43), flip(value, 44), flip(value, value.length - 1),
    value.slice(0, -1), value + 'A', 'A' + value, value.toUpperCase(), value.toLowerCase(),
    `"${value}"`, encodeURIComponent(value).replace('.', '%2E'), value.replace('.', '-'), value.replace('.', '..'),
    id.slice(1) + '.' + signature, id + 'A.' + signature, id.replace(/[-_]/g, '+') + '+/.' + signature,
    foreign, signature + '.' + id, id + '.' + id, 'x'.repeat(4096), value.repeat(2), '.'.repeat(87),
    'A'.repeat(43) + '.' + 'A'.repeat(43), value.slice(0, 43) + ' ' + value.slice(44)
  ]
  t.not(await check(value), undefined, 'the check tells the valid cookie apart')
  for (const bad of crafted) {
    t.equal(await check(bad), undefined, JSON.stringify(bad.length > 100 ? bad.slice(0, 20) + '…' : bad))
  }

  const printable = fc.integer({ min: 0x20, max: 0x7e }).filter((c) => c !== 0x3b).map((c) => String.fromCharCode(c))
  const mutated = fc.tuple(fc.nat({ max: value.length - 1 }), printable)
    .filter(([i, c]) => value[i] !== c)
    .map(([i, c]) => value.slice(0, i) + c + value.slice(i + 1))
  const random = fc.string({ unit: printable, maxLength: 120 })
  await fc.assert(fc.asyncProperty(fc.oneof(mutated, random), async (bad) => await check(bad) === undefined), { numRuns: 150 })
  t.pass('random and mutated values')
})

t.test('verified cookies are remembered in two generations of 5 000: evicted or kept, the answer is the same', async (t) => {
  const signer = new CookieSigner([SECRET])
  const values = Array.from({ length: 10_001 }, (_, i) => signer.sign(String(i).padStart(43, 'A')))
  for (const value of [values[0], values[1], values[5_000], values[10_000]]) {
    t.same(signer.verify(value), { id: value.slice(0, 43), value, stale: false }, 'remembered or checked again, the answer is the same')
  }
  const tampered = values[5].slice(0, -1) + (values[5].endsWith('A') ? 'B' : 'A')
  t.equal(signer.verify(tampered), null, 'only exact values are remembered')
  const other = new CookieSigner([SECRET.replace('a', 'b'), SECRET])
  t.same(other.verify(values[2]), { id: values[2].slice(0, 43), value: values[2], stale: true })
  t.same(other.verify(values[2]), { id: values[2].slice(0, 43), value: values[2], stale: true }, 'a remembered old-secret cookie is still re-signed')
})
