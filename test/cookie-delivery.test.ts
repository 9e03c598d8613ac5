import t, { type Test } from 'tap'
import type { FastifyServerOptions, LightMyRequestResponse } from 'fastify'
import type { RedisSessionOptions } from '../lib/index.js'
import { commandDelta } from './helpers/index.js'
import { buildApp, counterRoutes, privateRedis, sessionCookie, setCookies } from './helpers/app.js'

// Issue 11, point 6: a cookie the browser cannot keep (Secure on plain http, SameSite=None without
// Secure) left an orphan session in Redis per request, and nothing was logged. Now a new session
// is stored only where its cookie can be kept, and each cause is logged once per registration.

const redis = await privateRedis(t)

interface Transport {
  /** Host header: light-my-request's default, localhost:80, is a loopback host */
  host: string
  forwardedProto?: string
}
const PLAIN_HTTP: Transport = { host: 'app.example' }
const UNTRUSTED_PROXY: Transport = { host: 'app.example', forwardedProto: 'https' }

interface Setup {
  /** GET /write (a new session: the counter is set) over `transport`, `times` times; the responses and the Redis commands they ran */
  writeNew: (transport: Transport, times?: number) => Promise<{ responses: LightMyRequestResponse[], commands: Record<string, number> }>
  get: (url: string, transport: Transport, cookie?: string) => Promise<LightMyRequestResponse>
  /** the messages of the warnings logged so far */
  warnings: () => string[]
}

async function setup (t: Test, cookie: RedisSessionOptions['cookie'], options: Partial<RedisSessionOptions> = {}, serverOptions: FastifyServerOptions = {}): Promise<Setup> {
  const lines: string[] = []
  const logger = { level: 'warn', stream: { write: (line: string) => { lines.push(line) } } }
  const { app } = await buildApp(t, { cookie, ...options }, counterRoutes, { ...serverOptions, logger }, redis)
  const get = async (url: string, transport: Transport, cookie?: string): Promise<LightMyRequestResponse> => await app.inject({
    url,
    headers: {
      host: transport.host,
      ...(transport.forwardedProto === undefined ? {} : { 'x-forwarded-proto': transport.forwardedProto }),
      ...(cookie === undefined ? {} : { cookie })
    }
  })
  return {
    get,
    async writeNew (transport, times = 3) {
      const responses: LightMyRequestResponse[] = []
      const commands = await commandDelta(redis.admin, async () => {
        for (let i = 0; i < times; i++) responses.push(await get('/write', transport))
      })
      return { responses, commands }
    },
    warnings: () => lines.map((line) => JSON.parse(line) as { level: number, msg: string }).filter((line) => line.level === 40).map((line) => line.msg)
  }
}

/** Asserts that each of three new sessions was answered with a cookie and stored (one SET each). */
function assertStored (t: Test, { responses, commands }: Awaited<ReturnType<Setup['writeNew']>>): void {
  t.ok(responses.every((response) => response.statusCode === 200 && sessionCookie(response) !== undefined), 'every response sets the cookie')
  t.same(commands, { set: responses.length }, 'every new session is stored')
}

/** Asserts that nothing reached Redis and no cookie went out, while the handler still ran. */
function assertNotStored (t: Test, { responses, commands }: Awaited<ReturnType<Setup['writeNew']>>): void {
  t.same(responses.map((response) => response.json()), responses.map(() => ({ n: 1 })), 'the handler ran')
  t.same(responses.flatMap(setCookies), [], 'no Set-Cookie')
  t.same(commands, {}, 'not one Redis command')
}

t.test('secure: true over plain http: nothing stored, one warning', async (t) => {
  const app = await setup(t, { secure: true })
  assertNotStored(t, await app.writeNew(PLAIN_HTTP))
  assertNotStored(t, await app.writeNew(PLAIN_HTTP))
  t.equal(app.warnings().length, 1, 'one warning over six requests')
  t.match(app.warnings()[0], /^cookie\.secure is true but this request came over plain http: browsers drop Secure cookies on http, so no new session is stored and no cookie is set\. Serve the app over https, or set cookie\.secure: 'auto'/)
  t.match(app.warnings()[0], /logged once/)
})

t.test('secure: true: a session that came with a valid cookie is saved as before', async (t) => {
  // the browser that got its cookie over https (behind a trusted proxy) keeps sending it
  const app = await setup(t, { secure: true }, {}, { trustProxy: true })
  const created = await app.get('/write', { host: 'app.example', forwardedProto: 'https' })
  const cookie = sessionCookie(created) as string
  t.match(setCookies(created)[0], /; Secure;/)
  const written = await app.get('/write', PLAIN_HTTP, cookie)
  t.same(written.json(), { n: 2 }, 'the existing session was loaded and saved over http')
  t.same((await app.get('/read', { host: 'app.example', forwardedProto: 'https' }, cookie)).json(), { n: 2, isNew: false })
  t.same(app.warnings(), [], 'nothing to warn about: no new session was refused')
})

t.test('secure: true on a loopback host over http: stored (Chrome and Firefox keep it), one warning', async (t) => {
  const app = await setup(t, { secure: true })
  for (const host of ['localhost:3000', '127.0.0.1:3000', '[::1]:3000', 'app.localhost']) {
    assertStored(t, await app.writeNew({ host }))
  }
  t.equal(app.warnings().length, 1, 'one warning for every loopback request')
  t.match(app.warnings()[0], /^cookie\.secure is true and this request came over plain http to a loopback host: Chrome and Firefox keep Secure cookies from localhost, Safari does not/)
  assertNotStored(t, await app.writeNew({ host: '127.0.0.1.example' }))
  t.equal(app.warnings().length, 2, 'another host over http is the other, logged once too')
})

t.test('secure: true behind a proxy Fastify does not trust: stored, one warning to set trustProxy', async (t) => {
  const app = await setup(t, { secure: true })
  const result = await app.writeNew(UNTRUSTED_PROXY)
  assertStored(t, result)
  t.match(setCookies(result.responses[0])[0], /; Secure;/)
  t.same(app.warnings(), [
    "X-Forwarded-Proto says https but came from a proxy Fastify does not trust, so request.protocol is http; the browser is on https and keeps the Secure cookie. Set Fastify's trustProxy option (Fastify({ trustProxy: true }), or the proxy's address) (logged once; it holds for every such request)"
  ])
  assertStored(t, await app.writeNew({ host: 'app.example', forwardedProto: 'http, HTTPS' }))
  t.equal(app.warnings().length, 1, 'the last proxy hop counts, as in Fastify')
})

t.test('secure: "auto" behind a proxy Fastify does not trust: stored without Secure, one warning', async (t) => {
  const app = await setup(t, {})
  const result = await app.writeNew(UNTRUSTED_PROXY)
  assertStored(t, result)
  t.notMatch(setCookies(result.responses[0])[0], /Secure/)
  t.same(app.warnings(), [
    "X-Forwarded-Proto says https but came from a proxy Fastify does not trust, so request.protocol is http and cookie.secure 'auto' sends the cookie without Secure although the browser is on https. Set Fastify's trustProxy option (Fastify({ trustProxy: true }), or the proxy's address) (logged once; it holds for every such request)"
  ])
})

t.test('sameSite: "none" without Secure (secure: "auto" over http) is refused by browsers: nothing stored, one warning', async (t) => {
  const app = await setup(t, { sameSite: 'none' })
  assertNotStored(t, await app.writeNew(PLAIN_HTTP))
  assertNotStored(t, await app.writeNew({ host: 'localhost' }))
  t.same(app.warnings(), [
    "Browsers refuse a SameSite=None cookie without Secure, which cookie.secure 'auto' leaves out on plain http, so no new session is stored and no cookie is set. Serve the app over https (behind a TLS proxy, with Fastify's trustProxy), or use cookie.sameSite 'lax' (logged once; it holds for every such request)"
  ])
  assertNotStored(t, await app.writeNew(UNTRUSTED_PROXY))
  t.equal(app.warnings().length, 2)
  t.match(app.warnings()[1], /^X-Forwarded-Proto says https .* would send the cookie without Secure, which browsers refuse for a SameSite=None cookie, so no new session is stored and no cookie is set\. Set Fastify's trustProxy option/)
})

t.test('sameSite: "none" over https (a trusted proxy) is stored, and nothing is logged', async (t) => {
  const app = await setup(t, { sameSite: 'none' }, {}, { trustProxy: true })
  const result = await app.writeNew(UNTRUSTED_PROXY)
  assertStored(t, result)
  t.match(setCookies(result.responses[0])[0], /; Secure; SameSite=None$/)
  t.same(app.warnings(), [])
})

t.test('a __Host- or __Secure- cookie name needs Secure: not stored over plain http', async (t) => {
  for (const cookieName of ['__Host-sid', '__secure-sid']) {
    const app = await setup(t, {}, { cookieName })
    assertNotStored(t, await app.writeNew(PLAIN_HTTP))
    t.equal(app.warnings().length, 1)
    t.match(app.warnings()[0], `Browsers refuse a cookie named ${cookieName.slice(0, cookieName.indexOf('-') + 1)}… without Secure`)
    t.notMatch(app.warnings()[0], 'sameSite', 'lax would not help here')
  }
})

t.test('defaults, and secure: false: stored over http on any host, nothing logged', async (t) => {
  const defaults = await setup(t, {})
  assertStored(t, await defaults.writeNew(PLAIN_HTTP))
  assertStored(t, await defaults.writeNew({ host: 'localhost' }))
  t.same(defaults.warnings(), [])
  const insecure = await setup(t, { secure: false })
  assertStored(t, await insecure.writeNew(PLAIN_HTTP))
  assertStored(t, await insecure.writeNew(UNTRUSTED_PROXY))
  t.same(insecure.warnings(), [], 'secure: false never sends Secure: the proxy does not matter')
})

t.test('the warning is once per registration, not once per process', async (t) => {
  const first = await setup(t, { secure: true })
  const second = await setup(t, { secure: true })
  await first.writeNew(PLAIN_HTTP, 2)
  await second.writeNew(PLAIN_HTTP, 2)
  t.equal(first.warnings().length, 1)
  t.equal(second.warnings().length, 1)
})

t.test('shouldSetCookie false sends no cookie anyway: nothing is checked or logged', async (t) => {
  const app = await setup(t, { secure: true }, { shouldSetCookie: () => false })
  assertNotStored(t, await app.writeNew(PLAIN_HTTP))
  t.same(app.warnings(), [])
})
