// The demo in example/ without a browser: its app through app.inject, and `npm start` (example/server.js)
// as a process. test/e2e.test.ts adds what only a browser shows.
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { connect, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { buildApp, SESSION_TIMEOUT } from '../example/app.js'
import { freePort, waitFor } from './helpers/index.js'
import { idOf, privateRedis, recordTraffic, sessionCookie, setCookies } from './helpers/app.js'

const { redis, admin } = await privateRedis(t)

async function demo (t: Test): Promise<FastifyInstance> {
  const app = await buildApp({ secret: randomBytes(32).toString('base64url'), redisUrl: redis.url })
  t.teardown(async () => await app.close())
  return app
}

const unescapeHtml = (html: string): string => html.replace(/&#(\d+);/g, (_, code: string) => String.fromCharCode(Number(code)))

/** The text of the element with `id`, or null when the page has none. */
function text (page: LightMyRequestResponse, id: string): string | null {
  const match = new RegExp(`id="${id}"[^>]*>([^<]*)<`).exec(page.body)
  return match === null ? null : unescapeHtml(match[1])
}

/** The flash messages on the page, as `type: message`. */
const flashes = (page: LightMyRequestResponse): string[] =>
  [...page.body.matchAll(/class="flash flash-([^"]+)"[^>]*>([^<]*)</g)].map(([, type, message]) => `${type}: ${unescapeHtml(message)}`)

interface Device { name: string, current: boolean, ip: string, since: string, seen: string, handle: string, button: boolean }

/** The "Where you're signed in" list of the page. */
const devices = (page: LightMyRequestResponse): Device[] =>
  [...page.body.matchAll(/<li class="device" data-device="([^"]+)"( data-current)?>([^]*?)<\/li>/g)].map(([, handle, current, item]) => ({
    name: unescapeHtml(/class="device-name">([^<]*)</.exec(item)?.[1] ?? ''),
    current: current !== undefined,
    ip: /class="device-ip">([^<]*)</.exec(item)?.[1] ?? '',
    since: /class="device-since">([^<]*)</.exec(item)?.[1] ?? '',
    seen: /class="device-seen">([^<]*)</.exec(item)?.[1] ?? '',
    handle,
    button: item.includes(`name="device" value="${handle}"`)
  }))

/** A browser of its own: keeps the session cookie and follows the redirect after each form post. */
class Visitor {
  cookie: string | undefined
  /** `userAgent` null: no User-Agent header at all */
  constructor (readonly app: FastifyInstance, readonly userAgent?: string | null) {}

  get id (): string | undefined {
    return this.cookie === undefined ? undefined : idOf(this.cookie)
  }

  async get (url: string): Promise<LightMyRequestResponse> {
    return this.#keep(await this.app.inject({ url, headers: this.#headers() }))
  }

  /** Posts the form and returns the page the redirect leads to. */
  async submit (url: string, form: Record<string, string> = {}): Promise<LightMyRequestResponse> {
    const posted = this.#keep(await this.app.inject({
      method: 'POST',
      url,
      headers: { ...this.#headers(), 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams(form).toString()
    }))
    if (posted.statusCode !== 303) throw new Error(`POST ${url} answered ${posted.statusCode}: ${posted.body}`)
    return await this.get(posted.headers.location as string)
  }

  #headers (): Record<string, string | undefined> {
    // light-my-request sends a User-Agent of its own unless the header is given as undefined
    return { ...(this.cookie === undefined ? {} : { cookie: this.cookie }), ...(this.userAgent === undefined ? {} : { 'user-agent': this.userAgent ?? undefined }) }
  }

  #keep (response: LightMyRequestResponse): LightMyRequestResponse {
    const line = setCookies(response).find((l) => l.startsWith('session='))
    if (line !== undefined) this.cookie = line.includes('Max-Age=0') ? undefined : sessionCookie(response)
    return response
  }
}

/** The TTL Redis has for the visitor's session, in whole seconds. */
const ttlOf = async (visitor: Visitor): Promise<number> => Math.round(await admin.pttl('sess:' + visitor.id) / 1000)

t.test('the demo app', async (t) => {
  const app = await demo(t)
  const visitor = (userAgent?: string | null): Visitor => new Visitor(app, userAgent)

  t.test('a first visit: a new session, stored by this response with its cookie, for the whole timeout', async (t) => {
    const ada = visitor()
    const page = await ada.get('/')
    t.equal(page.statusCode, 200)
    t.match(page.headers['content-type'], 'text/html')
    t.equal(text(page, 'views'), '1')
    t.match(page.body, 'view of this page')
    t.equal(text(page, 'loaded'), 'new session')
    t.match(page.body, 'No session cookie came with this request')
    t.equal(text(page, 'saved'), 'saved')
    t.match(page.body, 'SET … NX')
    t.equal(text(page, 'ttl'), `${SESSION_TIMEOUT / 60} min`)
    t.match(page.body, `TTL ${SESSION_TIMEOUT} s, set by this save`)
    t.match(setCookies(page)[0], /^session=[^;]+; Path=\/; HttpOnly; SameSite=Lax$/)
    t.equal(await ttlOf(ada), SESSION_TIMEOUT, 'the TTL shown is the one in Redis')
  })

  t.test('a reload: loaded from Redis (one GETEX, which resets the TTL) and saved (one SET)', async (t) => {
    const ada = visitor()
    await ada.get('/')
    await admin.expire('sess:' + ada.id, 60)
    const traffic = recordTraffic(app.sessionStore.client)
    const page = await ada.get('/')
    t.same(traffic.commands, ['getex', 'set'])
    t.equal(text(page, 'views'), '2')
    t.match(page.body, 'views of this page')
    t.equal(text(page, 'loaded'), 'from Redis')
    t.match(page.body, 'one GETEX read it and reset its expiry')
    t.equal(text(page, 'saved'), 'saved')
    t.match(page.body, 'SET … XX')
    t.match(page.body, `TTL ${SESSION_TIMEOUT} s, reset by this request's read`)
    t.equal(await ttlOf(ada), SESSION_TIMEOUT, 'what the page says is what Redis has')
    t.same(setCookies(page), [], 'the browser keeps the cookie it has')
  })

  t.test('looking without counting: one GETEX, nothing written, the expiry slid all the same', async (t) => {
    const ada = visitor()
    await ada.get('/')
    await admin.expire('sess:' + ada.id, 60)
    const traffic = recordTraffic(app.sessionStore.client)
    const page = await ada.get('/peek')
    t.same(traffic.commands, ['getex'])
    t.equal(text(page, 'views'), '1', 'not counted')
    t.equal(text(page, 'loaded'), 'from Redis')
    t.equal(text(page, 'saved'), 'not saved')
    t.match(page.body, 'the read was the only Redis round trip')
    t.equal(text(page, 'ttl'), `${SESSION_TIMEOUT / 60} min`)
    t.equal(await ttlOf(ada), SESSION_TIMEOUT, 'GETEX slid the expiry, as the page says')
    t.same(setCookies(page), [])
  })

  t.test('looking without counting on a first visit: no Redis command, nothing stored, no cookie', async (t) => {
    const traffic = recordTraffic(app.sessionStore.client)
    const page = await visitor().get('/peek')
    t.same(traffic.commands, [])
    t.equal(text(page, 'views'), '0')
    t.equal(text(page, 'loaded'), 'new session')
    t.equal(text(page, 'saved'), 'not saved')
    t.match(page.body, 'nothing is stored and no cookie is set')
    t.equal(text(page, 'ttl'), 'not stored')
    t.same(setCookies(page), [])
  })

  t.test('a cookie whose session is gone (or was never ours): a new session, and the page says why', async (t) => {
    const ada = visitor()
    await ada.get('/')
    await admin.del('sess:' + ada.id)
    const page = await ada.get('/peek')
    t.equal(text(page, 'loaded'), 'new session')
    t.match(page.body, 'names no live session')
    t.equal(text(page, 'ttl'), 'not stored')
    const forged = await app.inject({ url: '/peek', headers: { cookie: 'theme=dark; session=forged.value' } })
    t.match(forged.body, 'names no live session')
    const other = await app.inject({ url: '/peek', headers: { cookie: 'mysession=x' } })
    t.match(other.body, 'No session cookie came with this request', 'another cookie is not ours')
  })

  t.test('login: a new id, the old record gone, the counter kept and nothing else, the welcome once, the name as text', async (t) => {
    const ada = visitor()
    await ada.get('/')
    await ada.get('/')
    const before = ada.id as string
    await ada.submit('/login', { username: '  ' }) // shows the error flash
    await ada.get('/peek')
    // an error flash left unseen (the redirect not followed) must not outlive the login
    await app.inject({ method: 'POST', url: '/login', headers: { cookie: ada.cookie as string }, payload: {} })
    const page = await ada.submit('/login', { username: ' Ada <b>&</b> Co ' })
    t.not(ada.id, before, 'a new id')
    t.equal(await app.sessionStore.get(before), null, 'the record from before the login is gone')
    t.equal(text(page, 'user'), 'Ada <b>&</b> Co', 'trimmed')
    t.notMatch(page.body, '<b>&</b>', 'escaped')
    t.same(flashes(page), ['success: Welcome, Ada <b>&</b> Co'], 'only the welcome')
    t.match(page.body, 'class="flash flash-success" role="status"')
    t.equal(text(page, 'views'), '4', 'the counter survived the new id')
    t.equal(text(page, 'sessions'), '1')
    t.match(page.body, 'active session.')
    t.same(await app.sessionStore.get(ada.id as string), { views: 4, user: 'Ada <b>&</b> Co' })

    const reload = await ada.get('/')
    t.same(flashes(reload), [], 'the flash is shown once')
    t.equal(text(reload, 'user'), 'Ada <b>&</b> Co', 'still logged in')

    const grace = await ada.submit('/login', { username: 'grace' })
    t.equal(text(grace, 'user'), 'grace', 'logging in as someone else replaces the user')
    t.same(await app.sessionStore.listByOwner('Ada <b>&</b> Co'), [], 'and leaves nothing in the first user\'s index')
  })

  t.test('a blank or missing user name is refused with an error flash', async (t) => {
    const ada = visitor()
    for (const form of [{ username: '   ' }, {}] as Array<Record<string, string>>) {
      const page = await ada.submit('/login', form)
      t.same(flashes(page), ['error: Please enter a user name.'])
      t.match(page.body, 'class="flash flash-error" role="alert"')
      t.equal(text(page, 'user'), null)
    }
  })

  t.test('logout deletes the record and says so; the next page is a fresh session', async (t) => {
    const hopper = visitor()
    await hopper.submit('/login', { username: 'hopper' })
    const id = hopper.id as string
    const page = await hopper.submit('/logout')
    t.equal(await app.sessionStore.get(id), null)
    t.not(hopper.id, id)
    t.same(flashes(page), ['info: You are logged out.'])
    t.equal(text(page, 'user'), null)
    t.match(page.body, 'id="login"')
    t.equal(text(page, 'views'), '1')
    t.same(await app.sessionStore.listByOwner('hopper'), [])
  })

  t.test('log out everywhere ends the user\'s sessions in every browser, and only that user\'s', async (t) => {
    const [laptop, phone, other] = [visitor(), visitor(), visitor()]
    t.equal(text(await laptop.submit('/login', { username: 'linus' }), 'sessions'), '1')
    t.equal(text(await phone.submit('/login', { username: 'linus' }), 'sessions'), '2')
    await other.submit('/login', { username: 'margaret' })
    const page = await laptop.get('/')
    t.equal(text(page, 'sessions'), '2')
    t.match(page.body, 'active sessions.')

    const after = await laptop.submit('/logout-everywhere')
    t.same(flashes(after), ['info: Signed out of 2 sessions'])
    t.equal(text(after, 'user'), null)
    t.same(await app.sessionStore.listByOwner('linus'), [])
    const onPhone = await phone.get('/')
    t.equal(text(onPhone, 'user'), null, 'the phone is logged out')
    t.match(onPhone.body, 'names no live session')
    t.equal(text(await other.get('/'), 'user'), 'margaret', 'another user stays logged in')
  })

  t.test('log out everywhere when not logged in, or with the session already ended, does nothing; one session is "1 session"', async (t) => {
    const barbara = visitor()
    t.same(flashes(await barbara.submit('/logout-everywhere')), [])
    await barbara.submit('/login', { username: 'barbara' })
    t.equal(await app.sessionStore.destroyByOwner('barbara'), 1, 'ended from the server side')
    const ended = await barbara.submit('/logout-everywhere')
    t.same(flashes(ended), [], 'nothing to sign out of')
    t.match(ended.body, 'id="login"')
    await barbara.submit('/login', { username: 'barbara' })
    t.same(flashes(await barbara.submit('/logout-everywhere')), ['info: Signed out of 1 session'])
  })

  t.test('where you\'re signed in: each device with its browser, address and times, this one marked, the others signed out by a button', async (t) => {
    const firefox = 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0'
    const iphone = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1'
    const [laptop, phone, other] = [visitor(firefox), visitor(iphone), visitor('curl/8.5.0')]
    const before = new Date().toISOString().slice(0, 16).replace('T', ' ')
    t.equal(await laptop.submit('/login', { username: 'katherine' }).then((page) => devices(page).length), 1)
    await new Promise((resolve) => setTimeout(resolve, 20))
    await phone.submit('/login', { username: 'katherine' })
    await other.submit('/login', { username: 'dorothy' })
    await new Promise((resolve) => setTimeout(resolve, 50)) // the index prune that follows a login

    const traffic = recordTraffic(app.sessionStore.client)
    const page = await laptop.get('/peek')
    t.same(traffic.commands, ['getex', 'smembers', 'get', 'pttl', 'get', 'pttl'], 'the list costs the index and one round trip for every device')
    t.equal(traffic.roundTrips, 3)
    const listed = devices(page)
    t.same(listed.map(({ name, current, ip }) => ({ name, current, ip })), [
      { name: 'Firefox on Linux', current: true, ip: '127.0.0.1' },
      { name: 'Safari on iPhone', current: false, ip: '127.0.0.1' }
    ], 'this browser, just seen, first')
    t.equal(listed[0].seen, 'now')
    t.ok(listed.every(({ since }) => since >= before && since.endsWith(' UTC')), 'signed in during this test')
    t.ok(listed[1].seen >= before, 'the phone\'s last visit')
    t.notMatch(page.body, phone.id as string, 'no session id in the page')
    t.notMatch(page.body, /this device[^]*this device/, 'one browser is this one')
    t.equal(listed[0].button, false, 'this browser logs out with "Log out"')

    const after = await laptop.submit('/devices/sign-out', { device: listed[1].handle })
    t.same(flashes(after), ['info: Signed out Safari on iPhone.'])
    t.same(devices(after).map(({ name }) => name), ['Firefox on Linux'])
    t.equal(text(after, 'user'), 'katherine', 'this browser stays signed in')
    const onPhone = await phone.get('/')
    t.equal(text(onPhone, 'user'), null, 'the phone is signed out')
    t.match(onPhone.body, 'names no live session')

    const theirs = devices(await other.get('/peek'))[0].handle
    const refused = await laptop.submit('/devices/sign-out', { device: theirs })
    t.same(flashes(refused), ['warning: That device is not signed in (any more).'], 'another user\'s device cannot be found')
    t.equal(text(await other.get('/'), 'user'), 'dorothy')
    t.same(flashes(await laptop.submit('/devices/sign-out', { device: devices(after)[0].handle })), ['warning: That device is not signed in (any more).'], 'nor this one')
    t.same(flashes(await visitor().submit('/devices/sign-out', { device: theirs })), ['warning: That device is not signed in (any more).'], 'nor anything without logging in')
    t.same(flashes(await laptop.submit('/devices/sign-out')), ['warning: That device is not signed in (any more).'], 'a form without a device')
  })

  t.test('a device the list cannot name: its user agent as sent (as text), or "an unknown browser" (none sent)', async (t) => {
    const [plain, bare] = [visitor('Mozilla/5.0 (X11) Chrome/126.0 Safari/537.36'), visitor('a-robot/1.0 <script>')]
    await plain.submit('/login', { username: 'mary' })
    await bare.submit('/login', { username: 'mary' })
    const anonymous = visitor(null)
    await anonymous.submit('/login', { username: 'mary' })
    const names = devices(await plain.get('/peek')).map(({ name }) => name).sort()
    t.same(names, ['Chrome', 'a-robot/1.0 <script>', 'an unknown browser'])
  })

  t.test('/health answers without a session: no cookie, only a PING', async (t) => {
    const traffic = recordTraffic(app.sessionStore.client)
    const response = await app.inject({ url: '/health', headers: { cookie: visitor().cookie ?? '' } })
    t.same(response.json(), { status: 'ok' })
    t.same(setCookies(response), [])
    t.same(traffic.commands, ['ping'])
  })

  t.test('the page stands alone: a viewport, inline CSS, no script or external asset, a line saying what to try', async (t) => {
    const page = await visitor().get('/')
    t.match(page.body, '<meta name="viewport" content="width=device-width, initial-scale=1">')
    t.match(page.body, /<style>[^]*\.flash-error \{[^}]*background[^]*<\/style>/)
    for (const type of ['info', 'success', 'error']) t.match(page.body, `.flash-${type} {`, `flash type ${type} has a style`)
    t.notMatch(page.body, /<script|<link|<img|src=|url\(|@import|https?:\/\//, 'nothing to fetch')
    t.match(text(page, 'try'), /^Try this: reload to count/)
  })
})

const repo = fileURLToPath(new URL('..', import.meta.url))

interface Exit { code: number | null, stdout: string, stderr: string }
interface Demo { child: ChildProcess, output: () => string, exited: Promise<Exit> }

/**
 * `npm start` as a user runs it (node example/server.js), with none of the variables it reads
 * inherited: only `env` and a SESSION_SECRET unless `env` says otherwise.
 */
function npmStart (t: Test, env: Record<string, string | undefined>): Demo {
  const { PORT: _port, HOST: _host, LOG_LEVEL: _level, REDIS_URL: _url, SESSION_SECRET: _secret, ...inherited } = process.env
  const child = spawn(process.execPath, ['example/server.js'], {
    cwd: repo,
    env: { ...inherited, SESSION_SECRET: randomBytes(32).toString('base64url'), LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk) => { stdout += chunk })
  child.stderr.on('data', (chunk) => { stderr += chunk })
  const exited = new Promise<Exit>((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })))
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exited
  })
  return { child, output: () => stdout + stderr, exited }
}

/** Starts the demo on a free port and resolves once it serves its page. */
async function serving (t: Test, env: Record<string, string | undefined> = {}): Promise<Demo & { home: string }> {
  const port = await freePort()
  const demo = npmStart(t, { PORT: String(port), ...env })
  const home = `http://127.0.0.1:${port}/`
  const page = await waitFor(async () => await fetch(home), { what: `the demo on ${home}`, timeout: 20_000 })
  t.equal(page.status, 200, 'the demo serves its page')
  return { ...demo, home }
}

/** The port of the private redis-server the demo said it started. */
function redisPortIn (output: string): number {
  const match = /Started a private redis-server at redis:\/\/127\.0\.0\.1:(\d+)/.exec(output)
  if (match === null) throw new Error(`the demo did not say which redis-server it started:\n${output}`)
  return Number(match[1])
}

/** Resolves once nothing listens on the redis-server port the demo said it started. */
async function stopped (output: string): Promise<void> {
  const port = redisPortIn(output)
  const refuses = async (): Promise<boolean> => await new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => { socket.destroy(); resolve(false) })
    socket.once('error', () => resolve(true))
  })
  await waitFor(refuses, { what: `the demo's redis-server on port ${port} to stop` })
}

/** Keeps `port` busy for the test: listens on it, or finds it taken already. */
async function occupy (t: Test, port: number): Promise<void> {
  const server = createServer()
  const listening = await new Promise<boolean>((resolve) => {
    server.once('error', () => resolve(false)) // taken by someone else: busy all the same
    server.listen(port, '127.0.0.1', () => resolve(true))
  })
  if (listening) t.teardown(() => server.close())
}

/** A directory for PATH holding only a file named redis-server with `content` and `mode`. */
async function pathWithRedisServer (t: Test, content: string, mode: number): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'frs-demo-path-'))
  t.teardown(async () => await rm(dir, { recursive: true, force: true }))
  await writeFile(join(dir, 'redis-server'), content, { mode })
  return dir
}

t.test('npm start', async (t) => {
  for (const { PORT, port, suggested } of [
    { PORT: undefined, port: 3000, suggested: 3001 },
    { PORT: '65535', port: 65535, suggested: 65534 }
  ]) {
    t.test(`a busy port (${port}): one line saying so and how to set PORT, exit 1, its redis-server stopped`, async (t) => {
      await occupy(t, port)
      // HOST and LOG_LEVEL unset too: the defaults, as a second `npm start` has them
      const { code, stdout, stderr } = await npmStart(t, { PORT, LOG_LEVEL: undefined }).exited
      t.equal(stderr, `Port ${port} is already in use on 127.0.0.1. Set PORT to a free one, e.g. PORT=${suggested} npm start\n`)
      t.equal(code, 1)
      await stopped(stdout)
    })
  }

  t.test('a HOST this machine does not have: one line, exit 1, its redis-server stopped', async (t) => {
    const port = await freePort()
    const { code, stdout, stderr } = await npmStart(t, { PORT: String(port), HOST: '192.0.2.1' }).exited // TEST-NET-1
    t.match(stderr, new RegExp(`^Cannot listen on 192\\.0\\.2\\.1:${port}: listen EADDRNOTAVAIL.*\\. Check HOST and PORT, e\\.g\\. HOST=127\\.0\\.0\\.1 PORT=3001 npm start\\n$`))
    t.equal(code, 1)
    await stopped(stdout)
  })

  t.test('a PORT that is no port number: one line, before anything starts', async (t) => {
    for (const PORT of ['http', '70000']) {
      const { code, stdout, stderr } = await npmStart(t, { PORT }).exited
      t.equal(stderr, `PORT must be a port number from 0 to 65535, not ${JSON.stringify(PORT)}: e.g. PORT=3001 npm start\n`)
      t.equal(code, 1)
      t.equal(stdout, '')
    }
  })

  t.test('serves the demo with its own redis-server and a random secret; SIGTERM stops both', async (t) => {
    const demo = await serving(t, { SESSION_SECRET: undefined })
    t.match(await (await fetch(demo.home)).text(), 'fastify-redis-sessions demo')
    t.match(demo.output(), 'SESSION_SECRET is not set: using a random secret, so sessions will not survive a restart.')
    demo.child.kill('SIGTERM')
    t.equal((await demo.exited).code, 0, 'a clean exit')
    await stopped(demo.output())
  })

  t.test('a second signal while closing exits at once, its redis-server stopped all the same', async (t) => {
    const demo = await serving(t)
    // both arrive together when the process resumes: the second finds the first still closing
    demo.child.kill('SIGSTOP')
    demo.child.kill('SIGTERM')
    demo.child.kill('SIGINT')
    demo.child.kill('SIGCONT')
    t.equal((await demo.exited).code, 1)
    await stopped(demo.output())
  })

  t.test('with REDIS_URL: uses that server and starts none', async (t) => {
    const demo = await serving(t, { REDIS_URL: redis.url })
    const page = await fetch(demo.home)
    const id = idOf(page.headers.getSetCookie()[0].split(';')[0])
    t.not(await admin.get('sess:' + id), null, 'the session is in REDIS_URL\'s server')
    t.notMatch(demo.output(), 'Started a private redis-server')
    demo.child.kill('SIGTERM')
    t.equal((await demo.exited).code, 0)
  })

  t.test('without redis-server on PATH: says to install it or set REDIS_URL', async (t) => {
    const empty = await mkdtemp(join(tmpdir(), 'frs-demo-path-'))
    t.teardown(async () => await rm(empty, { recursive: true, force: true }))
    const { code, stderr } = await npmStart(t, { PATH: empty, PORT: String(await freePort()) }).exited
    t.equal(stderr, 'redis-server was not found on PATH. Install Redis (e.g. `apt-get install redis-server` or `brew install redis`),\n' +
      'or set REDIS_URL to a running server, e.g. REDIS_URL=redis://127.0.0.1:6379 npm start\n')
    t.equal(code, 1)
  })

  // broken installations, stood in for by a file on PATH: a real redis-server cannot be made to fail from outside
  t.test('a redis-server that cannot be run: says why', async (t) => {
    const path = await pathWithRedisServer(t, '', 0o644)
    const { code, stderr } = await npmStart(t, { PATH: path, PORT: String(await freePort()) }).exited
    t.equal(stderr, 'cannot start redis-server: spawn redis-server EACCES\n')
    t.equal(code, 1)
  })

  t.test('a redis-server that exits during start-up: its exit code and output', async (t) => {
    const path = await pathWithRedisServer(t, '#!/bin/sh\necho "Fatal: no memory" >&2\nexit 3\n', 0o755)
    const { code, stderr } = await npmStart(t, { PATH: path, PORT: String(await freePort()) }).exited
    t.equal(stderr, 'redis-server exited (3) during start-up:\nFatal: no memory\n\n')
    t.equal(code, 1)
  })
})
