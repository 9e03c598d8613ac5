import t from 'tap'
import Fastify, { type FastifyError } from 'fastify'
import redisSession, { type RedisSessionOptions } from '../lib/index.js'
import { resolveOptions } from '../lib/options.js'
import { buildApp, idOf, privateRedis, SECRET, sessionCookie } from './helpers/app.js'

// Every bad option is reported at register, each by its path, all in one error.
type Options = Record<string, unknown>

async function registerError (options: unknown): Promise<FastifyError> {
  const app = Fastify()
  try {
    await app.register(redisSession, options as RedisSessionOptions)
  } catch (err) {
    return err as FastifyError
  }
  await app.close()
  throw new Error('register accepted ' + JSON.stringify(options))
}

/** The problems the message lists, after `Invalid fastify-redis-sessions options: `. */
function problems (err: Error): string[] {
  return err.message.slice(err.message.indexOf(': ') + 2).split('; ')
}

/** The option path each problem starts with. */
function badPaths (err: Error): string[] {
  return problems(err).map((problem) => problem.split(' ')[0]).sort()
}

const valid = { secret: SECRET }

t.test('every bad option is named in one error', async (t) => {
  const err = await registerError({
    secret: 'too short',
    timeout: -1,
    cookie: { sameSite: 'sometimes' },
    port: 70000,
    unknownThing: true,
    encode: 'JSON',
    client: { host: 'localhost' },
    prefix: 5,
    db: 1.5,
    maxSize: 0,
    cookieName: 'my session',
    decorator: 'my-session',
    detectChanges: 'yes'
  })
  t.equal(err.code, 'FST_RS_INVALID_OPTIONS')
  t.equal(err.statusCode, 500)
  t.same(badPaths(err), [
    '/client', '/cookie/sameSite', '/cookieName', '/db', '/decorator', '/detectChanges', '/encode',
    '/maxSize', '/port', '/prefix', '/secret', '/timeout', '/unknownThing'
  ].sort())
  t.ok(problems(err).includes('/unknownThing is not a known option'))
})

t.test('secret', async (t) => {
  const required = '/secret is required: generate one with `openssl rand -base64 48`'
  t.same(problems(await registerError({})), [required])
  t.same(problems(await registerError({ secret: undefined, url: 'redis://localhost' })), [required])
  t.same(badPaths(await registerError({ secret: 'x'.repeat(31) })), ['/secret'], '31 characters are too few')
  t.same(badPaths(await registerError({ secret: [] })), ['/secret'], 'an empty list')
  t.same(badPaths(await registerError({ secret: 42 })), ['/secret'])
  const rotation = await registerError({ secret: [SECRET, 'short', SECRET, 'x'.repeat(31)] })
  t.ok(badPaths(rotation).includes('/secret/1'), 'the short element is named')
  t.ok(badPaths(rotation).includes('/secret/3'), 'every short element is named')
  t.notOk(badPaths(rotation).includes('/secret/0'))
  t.notOk(badPaths(rotation).includes('/secret/2'))
})

t.test('options that are not an object', async (t) => {
  for (const options of [() => null, 'secret']) {
    const err = await registerError(options)
    t.equal(err.code, 'FST_RS_INVALID_OPTIONS')
    t.match(err.message, 'options must be an object')
  }
})

t.test('one way to reach Redis', async (t) => {
  const client = { sendCommand () {} }
  const err = await registerError({ ...valid, url: 'redis://localhost', socketPath: '/tmp/redis.sock', client })
  t.equal(err.code, 'FST_RS_INVALID_OPTIONS')
  t.same(problems(err), ['/client, /url, /socketPath are exclusive: give one way to reach Redis'])

  const nodes = [{ host: 'localhost', port: 7000 }]
  const both = await registerError({ ...valid, cluster: { nodes }, sentinel: { sentinels: nodes, name: 'main' } })
  t.same(problems(both), ['/cluster, /sentinel are exclusive: give one way to reach Redis'])

  t.same(badPaths(await registerError({ ...valid, url: 'http://localhost:6379' })), ['/url'])
})

t.test('connection settings are checked down to the nested path', async (t) => {
  const err = await registerError({
    ...valid,
    tls: { ca: [Buffer.from('pem'), 1], cert: 2, key: {}, servername: 3, verify: true },
    sentinel: { sentinels: [{ host: '', port: 0 }], name: '', role: 'master' },
    connectTimeout: 0,
    commandTimeout: 1.5,
    replicas: { count: 0 }
  })
  t.same(badPaths(err), [
    '/commandTimeout', '/connectTimeout', '/replicas/count', '/replicas/timeout',
    '/sentinel/name', '/sentinel/role', '/sentinel/sentinels/0/host', '/sentinel/sentinels/0/port',
    '/tls/ca', '/tls/cert', '/tls/key', '/tls/servername', '/tls/verify'
  ])
  t.same(badPaths(await registerError({ ...valid, cluster: { nodes: [] } })), ['/cluster/nodes'])
  t.same(badPaths(await registerError({ ...valid, tls: 'yes' })), ['/tls'])
  t.same(badPaths(await registerError({ ...valid, timeout: 100 * 365 * 24 * 3600 + 1 })), ['/timeout'], 'more than a century: no EXPIRE would take it')
})

t.test('valid values of every kind are not reported', async (t) => {
  const { admin } = await privateRedis(t)
  const pem = '-----BEGIN CERTIFICATE-----'
  const nodes = [{ host: 'localhost', port: 26379 }]
  const variants: Options[] = [
    { tls: { ca: [pem, Buffer.from(pem)], cert: pem, key: Buffer.from(pem), servername: 'redis.example' }, tlsSkipVerify: true },
    { tls: { ca: pem }, username: 'app', password: 'pw' },
    { tls: { ca: Buffer.from(pem) } },
    { tls: true, host: 'redis.example', db: 3 },
    { sentinel: { sentinels: nodes, name: 'main', password: 'pw', username: 'u', tls: { ca: pem } } },
    { cluster: { nodes } },
    { client: admin },
    { socketPath: '/tmp/redis.sock' },
    { url: 'rediss://user:pw@redis.example:6380/2' },
    { replicas: { count: 1, timeout: 100 }, connectTimeout: 1, commandTimeout: 101 },
    { replicas: { count: 1, timeout: 1999 } },
    { encode: JSON.stringify, decode: JSON.parse, shouldSetCookie: () => true },
    { cookie: { path: '/app', domain: '.example.com', httpOnly: false, sameSite: false, secure: 'auto', maxAge: 1, partitioned: true } },
    { cookie: { sameSite: 'none', secure: 'auto' } },
    { cookie: { sameSite: 'none', secure: true } },
    { layout: 'bucketed', buckets: 16, sweepInterval: 0.5 },
    { layout: 'hash', compress: { threshold: 0, algorithm: 'brotli' } },
    { compress: {} },
    { compress: false },
    { timeout: 0, redisTtl: false, layout: 'string', cookieOnException: false, deserializationFailsNew: true, maxSize: 1 },
    { timeout: null, prefix: '', cookieName: '__Host-sid', decorator: '$sess_2' },
    { absoluteTimeout: 8 * 3600, timeout: 1800 },
    { absoluteTimeout: 1, timeout: 0, redisTtl: false },
    { secret: [SECRET, 'x'.repeat(32)] }
  ]
  for (const variant of variants) {
    // a known bad option makes register fail before it connects to anything
    const err = await registerError({ ...valid, ...variant, port: 0 })
    t.same(badPaths(err), ['/port'], JSON.stringify(Object.keys(variant)))
  }
})

t.test('layout, bucketed-only options and compression', async (t) => {
  t.same(badPaths(await registerError({ ...valid, layout: 'list' })), ['/layout'])
  t.same(problems(await registerError({ ...valid, buckets: 16, sweepInterval: 60 })), [
    "/buckets only applies to layout 'bucketed': set /layout to 'bucketed' or remove /buckets",
    "/sweepInterval only applies to layout 'bucketed': set /layout to 'bucketed' or remove /sweepInterval"
  ])
  t.same(badPaths(await registerError({ ...valid, layout: 'hash', buckets: 16 })), ['/buckets'])
  t.same(badPaths(await registerError({ ...valid, layout: 'bucketed', buckets: 0, sweepInterval: 0 })), ['/buckets', '/sweepInterval'])
  t.same(badPaths(await registerError({ ...valid, compress: { threshold: -1, algorithm: 'zstd', level: 9 } })),
    ['/compress/algorithm', '/compress/level', '/compress/threshold'])
  t.same(badPaths(await registerError({ ...valid, compress: true })), ['/compress'])
})

t.test('sameSite "none" needs a secure cookie', async (t) => {
  const err = await registerError({ ...valid, cookie: { sameSite: 'none', secure: false } })
  t.equal(err.code, 'FST_RS_INVALID_OPTIONS')
  t.same(problems(err), ["/cookie/secure must not be false when /cookie/sameSite is 'none' (browsers refuse SameSite=None cookies without Secure): use secure: 'auto' or true"])
})

t.test('a __Host- or __Secure- cookie name is held to what browsers enforce', async (t) => {
  const because = (prefix: string): string => `when /cookieName starts with ${prefix} (browsers refuse such a cookie otherwise)`
  const host = await registerError({ ...valid, cookieName: '__Host-sid', cookie: { secure: false, path: '/app', domain: 'example.com' } })
  t.equal(host.code, 'FST_RS_INVALID_OPTIONS')
  t.same(problems(host), [
    `/cookie/secure must not be false ${because('__Host-')}: use secure: true, or 'auto' if the app also answers plain http (a new session is then not stored on http)`,
    `/cookie/path must be '/' ${because('__Host-')}: remove /cookie/path`,
    `/cookie/domain must be absent ${because('__Host-')}: remove /cookie/domain (the cookie then goes to this host only), or use a __Secure- name`
  ])
  t.same(badPaths(await registerError({ ...valid, cookieName: '__host-sid', cookie: { path: '/app' } })), ['/cookie/path'], 'browsers match the prefix in any case')
  t.same(badPaths(await registerError({ ...valid, cookieName: '__Secure-sid', cookie: { secure: false } })), ['/cookie/secure'])
  t.same(badPaths(await registerError({ ...valid, cookieName: '__SECURE-sid', cookie: { secure: false } })), ['/cookie/secure'])
  t.same(badPaths(await registerError({ ...valid, cookieName: '__Secure-sid', cookie: { secure: false, sameSite: 'none' } })), ['/cookie/secure', '/cookie/secure'], 'both reasons are given')

  const allowed: Options[] = [
    { cookieName: '__Host-sid' },
    { cookieName: '__Host-sid', cookie: { secure: true, path: '/' } },
    { cookieName: '__Host-sid', cookie: { secure: 'auto', sameSite: 'strict', partitioned: true } },
    { cookieName: '__Secure-sid', cookie: { secure: 'auto', path: '/app', domain: 'example.com' } },
    { cookieName: '__Secure-sid', cookie: { secure: true } },
    { cookieName: 'Host-sid', cookie: { secure: false, domain: 'example.com' } },
    { cookieName: '_Host-sid', cookie: { secure: false, path: '/app' } },
    { cookieName: 'x__Secure-sid', cookie: { secure: false } }
  ]
  for (const options of allowed) {
    t.same(badPaths(await registerError({ ...valid, ...options, port: 0 })), ['/port'], JSON.stringify(options))
  }
})

t.test('replicas.timeout below commandTimeout: a WAIT never outlasts the request that waits for it', async (t) => {
  const message = (commandTimeout: number): string => `/replicas/timeout must be less than /commandTimeout (${commandTimeout} ms): a save's WAIT would outlast the request waiting for it, and keep blocking its connection. Lower /replicas/timeout or raise /commandTimeout`
  t.same(problems(await registerError({ ...valid, replicas: { count: 1, timeout: 2000 } })), [message(2000)], 'the default commandTimeout')
  t.same(problems(await registerError({ ...valid, replicas: { count: 1, timeout: 600 }, commandTimeout: 500 })), [message(500)])
  t.same(badPaths(await registerError({ ...valid, replicas: { count: 1, timeout: 2500 }, commandTimeout: '2s' })), ['/commandTimeout', '/replicas/timeout'], 'an invalid commandTimeout counts as the default')
})

t.test('cookie path, domain and attributes', async (t) => {
  for (const path of ['app', '/a;b', '/a b', '', '/a\tb']) {
    t.same(badPaths(await registerError({ ...valid, cookie: { path } })), ['/cookie/path'], JSON.stringify(path))
  }
  for (const domain of ['a;b.example', 'a b.example', '', 'example.com\n']) {
    t.same(badPaths(await registerError({ ...valid, cookie: { domain } })), ['/cookie/domain'], JSON.stringify(domain))
  }
  const err = await registerError({ ...valid, cookie: { expires: 10, maxAge: -1, httpOnly: 'yes', secure: 'always', partitioned: 1 } })
  t.same(badPaths(err), ['/cookie/expires', '/cookie/httpOnly', '/cookie/maxAge', '/cookie/partitioned', '/cookie/secure'])
  t.ok(problems(err).includes('/cookie/expires is not a known option'))
  t.same(badPaths(await registerError({ ...valid, cookie: 'secure' })), ['/cookie'])
})

t.test('cookie.maxAge 0 is refused', async (t) => {
  t.same(badPaths(await registerError({ ...valid, cookie: { maxAge: 0 } })), ['/cookie/maxAge'])
})

t.test('cookie.maxAge in milliseconds by habit: more than the 400 days browsers keep a cookie is refused', async (t) => {
  const err = await registerError({ ...valid, cookie: { maxAge: 86_400_000 } })
  t.equal(err.code, 'FST_RS_INVALID_OPTIONS')
  t.same(problems(err), ['/cookie/maxAge is in seconds and must be at most 34560000 (400 days) (got 86400000): did you mean 86400, i.e. 1 day?'])
  t.same(problems(await registerError({ ...valid, cookie: { maxAge: 400 * 86400 + 1 } })),
    ['/cookie/maxAge is in seconds and must be at most 34560000 (400 days) (got 34560001)'], 'no guess when the value is not whole seconds in ms')
  // 400 days exactly is allowed: only the known bad /port fails register
  t.same(badPaths(await registerError({ ...valid, cookie: { maxAge: 400 * 86400 }, port: 0 })), ['/port'])
})

t.test('every bad cookie attribute is named, beyond the first few', async (t) => {
  const err = await registerError({
    ...valid,
    cookie: { expires: 10, path: 'app', domain: 'a b', httpOnly: 'yes', sameSite: 'Lax', secure: 'always', maxAge: -1, partitioned: 1 }
  })
  t.same(badPaths(err), ['/cookie/domain', '/cookie/expires', '/cookie/httpOnly', '/cookie/maxAge', '/cookie/partitioned', '/cookie/path', '/cookie/sameSite', '/cookie/secure'])
})

t.test('a union of literals lists the allowed values, and the one meant when only case or a typo differs', async (t) => {
  const cases: Array<[Options, string]> = [
    [{ cookie: { sameSite: 'Lax' } }, "/cookie/sameSite must be one of 'lax', 'strict', 'none', false (got 'Lax'): did you mean 'lax'?"],
    [{ cookie: { sameSite: 'stict' } }, "/cookie/sameSite must be one of 'lax', 'strict', 'none', false (got 'stict'): did you mean 'strict'?"],
    [{ cookie: { sameSite: true } }, "/cookie/sameSite must be one of 'lax', 'strict', 'none', false (got true)"],
    [{ cookie: { secure: 'always' } }, "/cookie/secure must be one of true, false, 'auto' (got 'always')"],
    [{ cookie: { secure: 'true' } }, "/cookie/secure must be one of true, false, 'auto' (got 'true'): did you mean true?"],
    [{ redisTtl: 'false' }, "/redisTtl must be true or false (got 'false'): did you mean false?"],
    [{ layout: 'Hash' }, "/layout must be one of 'string', 'hash', 'bucketed' (got 'Hash'): did you mean 'hash'?"],
    [{ layout: 'list' }, "/layout must be one of 'string', 'hash', 'bucketed' (got 'list')"],
    [{ compress: { algorithm: 'Brotli' } }, "/compress/algorithm must be one of 'deflate', 'gzip', 'brotli' (got 'Brotli'): did you mean 'brotli'?"],
    [{ compress: true }, '/compress must be false or an object { threshold?, algorithm? } (got true)'],
    [{ tls: 'yes' }, "/tls must be a boolean or an object { ca?, cert?, key?, servername? } (got 'yes')"]
  ]
  for (const [options, message] of cases) t.same(problems(await registerError({ ...valid, ...options })), [message])
})

t.test('an unknown option name suggests the known one', async (t) => {
  const err = await registerError({ ...valid, cookiename: 'sid', prefx: 'app:', maxAge: 60, threshold: 1, cookie: { samesite: 'lax', expires: 10 }, unknownThing: true })
  t.same(problems(err).sort(), [
    '/cookie/expires is not a known option',
    '/cookie/samesite is not a known option (did you mean /cookie/sameSite?)',
    '/cookiename is not a known option (did you mean /cookieName?)',
    '/maxAge is not a known option (did you mean /cookie/maxAge?)',
    '/prefx is not a known option (did you mean /prefix?)',
    '/threshold is not a known option (did you mean /compress/threshold?)',
    '/unknownThing is not a known option'
  ])
})

t.test('numbers written as text or as a duration name the number meant, in the option\'s unit', async (t) => {
  const cases: Array<[Options, string]> = [
    [{ timeout: '20m' }, "/timeout is in seconds and must be a whole number or null (got '20m'): did you mean 1200, i.e. 20 minutes?"],
    [{ timeout: '1 hour' }, "/timeout is in seconds and must be a whole number or null (got '1 hour'): did you mean 3600, i.e. 1 hour?"],
    [{ timeout: -1 }, '/timeout is in seconds and must be at least 0 (got -1)'],
    [{ absoluteTimeout: 0 }, '/absoluteTimeout is in seconds and must be at least 1 (got 0)'],
    [{ absoluteTimeout: '8h' }, "/absoluteTimeout is in seconds and must be a whole number (got '8h'): did you mean 28800, i.e. 8 hours?"],
    [{ commandTimeout: '2s' }, "/commandTimeout is in milliseconds and must be a whole number (got '2s'): did you mean 2000, i.e. 2 seconds?"],
    [{ commandTimeout: 'soon' }, "/commandTimeout is in milliseconds and must be a whole number (got 'soon')"],
    [{ port: '6379' }, "/port must be a whole number (got '6379'): did you mean 6379?"],
    [{ port: '5s' }, "/port must be a whole number (got '5s')"],
    [{ port: 70000 }, '/port must be at most 65535 (got 70000)'],
    [{ db: 1.5 }, '/db must be a whole number (got 1.5)'],
    [{ layout: 'bucketed', sweepInterval: '500ms' }, "/sweepInterval is in seconds and must be a number (got '500ms'): did you mean 0.5, i.e. 500 milliseconds?"],
    [{ layout: 'bucketed', sweepInterval: 0 }, '/sweepInterval is in seconds and must be more than 0 (got 0)'],
    [{ timeout: 100 * 365 * 86400 * 1000 }, '/timeout is in seconds and must be at most 3153600000 (36500 days) (got 3153600000000): did you mean 3153600000, i.e. 36500 days?']
  ]
  for (const [options, message] of cases) t.same(problems(await registerError({ ...valid, ...options })), [message])
})

t.test('strings that may be secrets are described, never echoed', async (t) => {
  const secret = 'my-short-secret'
  const cases: Array<[Options, string]> = [
    [{ secret }, '/secret must have at least 32 characters (got 15): generate one with `openssl rand -base64 48`'],
    [{ secret: [SECRET, secret] }, '/secret/1 must have at least 32 characters (got 15): generate one with `openssl rand -base64 48`'],
    [{ secret: 12345 }, '/secret must be a string or an array (got a number): generate one with `openssl rand -base64 48`'],
    [{ secret: [] }, '/secret must not be empty'],
    [{ url: 'localhost:6379/' + secret }, '/url must be a URL starting with redis:// (or rediss:// for TLS)'],
    [{ password: 12345 }, '/password must be a string (got a number)'],
    [{ url: 6379 }, '/url must be a URL starting with redis:// (or rediss:// for TLS) (got a number)'],
    [{ secret: [SECRET, undefined] }, '/secret/1 must be a string (got undefined): generate one with `openssl rand -base64 48`'],
    [{ prefix: () => 'app:' }, '/prefix must be a string (got a function)'],
    [{ tls: { key: 12345 } }, '/tls/key must be a PEM string or Buffer (got a number)'],
    [{ encode: secret }, '/encode must be a function (got a string)']
  ]
  for (const [options, message] of cases) t.same(problems(await registerError({ ...valid, ...options })), [message])
})

t.test('names and paths say what they may contain', async (t) => {
  const cases: Array<[Options, string]> = [
    [{ decorator: 'my-session' }, '/decorator must be a JavaScript identifier (letters, digits, _ and $, not starting with a digit)'],
    [{ cookieName: 'my session' }, "/cookieName must be a cookie name: letters, digits and !#$%&'*+.^_`|~- only (no spaces, ;, = or quotes)"],
    [{ cookie: { path: 'app' } }, "/cookie/path must be a path starting with / without ';' or whitespace"],
    [{ host: '' }, '/host must not be empty'],
    [{ cookie: 'secure' }, "/cookie must be an object { path?, domain?, httpOnly?, sameSite?, secure?, maxAge?, partitioned? } (got 'secure')"],
    [{ replicas: { count: 1 } }, '/replicas/timeout is required'],
    [{ replicas: 2 }, '/replicas must be an object { count, timeout } (got 2)'],
    [{ port: null }, '/port must be a whole number (got null)'],
    [{ layout: 'x'.repeat(50) }, `/layout must be one of 'string', 'hash', 'bucketed' (got '${'x'.repeat(40)}…')`],
    [{ layout: "it's\n" }, "/layout must be one of 'string', 'hash', 'bucketed' (got 'it\\'s\\n')"],
    [{ cluster: { nodes: [] } }, '/cluster/nodes must not be empty'],
    [{ client: {} }, '/client must be an ioredis Redis or Cluster instance (got an object)']
  ]
  for (const [options, message] of cases) t.same(problems(await registerError({ ...valid, ...options })), [message])
})

t.test('decorator and cookie name', async (t) => {
  for (const decorator of ['my-session', '1session', '', 'ses sion', 'a.b']) {
    t.same(badPaths(await registerError({ ...valid, decorator })), ['/decorator'], JSON.stringify(decorator))
  }
  for (const cookieName of ['', 'a b', 'a;b', 'a=b', 'sess"ion']) {
    t.same(badPaths(await registerError({ ...valid, cookieName })), ['/cookieName'], JSON.stringify(cookieName))
  }
})

t.test('migrateFrom: every bad path named, the old secrets taken as they were', async (t) => {
  const err = await registerError({ ...valid, migrateFrom: { cookieName: 'a b', secret: '', prefix: 1, cookiePrefix: null, extra: 1 } })
  t.same(badPaths(err), ['/migrateFrom/cookieName', '/migrateFrom/cookiePrefix', '/migrateFrom/extra', '/migrateFrom/prefix', '/migrateFrom/secret'])
  t.same(badPaths(await registerError({ ...valid, migrateFrom: { secret: [] } })), ['/migrateFrom/cookieName', '/migrateFrom/secret'])
  t.same(badPaths(await registerError({ ...valid, migrateFrom: { cookieName: 'x', secret: [42] } })), ['/migrateFrom/secret/0'])
  t.match(problems(await registerError({ ...valid, migrateFrom: 'sessionId' })), [/^\/migrateFrom must be an object \{ cookieName, secret, prefix\?, cookiePrefix\? \}/])
  t.match(problems(await registerError({ ...valid, migrateFrom: { cookieName: 'session', secret: 'x' } })), [/^\/migrateFrom\/cookieName must differ from \/cookieName \('session'\)/])
  t.match(problems(await registerError({ ...valid, cookieName: 'sid', migrateFrom: { cookieName: 'sid', secret: 'x' } })), [/must differ from \/cookieName \('sid'\)/])
  t.same(resolveOptions({ ...valid, migrateFrom: { cookieName: 'connect.sid', secret: 'keyboard cat' } }).migrateFrom,
    { cookieName: 'connect.sid', secrets: ['keyboard cat'], prefix: 'sess:', cookiePrefix: '' }, "defaults; express-session's example secret is short")
  t.same(resolveOptions({ ...valid, migrateFrom: { cookieName: 'connect.sid', secret: ['a', 'b'], prefix: 'app:', cookiePrefix: 's:' } }).migrateFrom,
    { cookieName: 'connect.sid', secrets: ['a', 'b'], prefix: 'app:', cookiePrefix: 's:' })
  t.equal(resolveOptions(valid).migrateFrom, undefined)
})

t.test('registered apps', async (t) => {
  const redis = await privateRedis(t)

  t.test('defaults', async (t) => {
    const setup = await buildApp(t, {}, (app) => {
      app.get('/write', async (request) => {
        request.session.set('n', 1)
        return {}
      })
    }, {}, redis)
    const response = await setup.request('/write')
    const cookie = sessionCookie(response) as string
    t.ok(cookie.startsWith('session='), 'cookie name session')
    t.match(response.headers['set-cookie'], /; Path=\/; HttpOnly; SameSite=Lax$/)
    const key = 'sess:' + idOf(cookie)
    t.equal(await setup.admin.exists(key), 1, 'prefix sess:')
    const ttl = await setup.admin.ttl(key)
    t.ok(ttl > 1190 && ttl <= 1200, `timeout 1200 s (TTL ${ttl})`)
    t.ok(setup.app.hasRequestDecorator('session'))
    t.ok(setup.app.hasDecorator('sessionStore'))
  })

  t.test('every option given, valid', async (t) => {
    const setup = await buildApp(t, {
      secret: [SECRET, 'an-older-secret-that-is-long-enough-too'],
      url: undefined,
      host: '127.0.0.1',
      port: redis.redis.port,
      db: 1,
      tls: false,
      tlsSkipVerify: false,
      connectTimeout: 1000,
      commandTimeout: 1000,
      prefix: 'opt:',
      timeout: 60,
      redisTtl: true,
      detectChanges: false,
      encode: JSON.stringify,
      decode: JSON.parse,
      deserializationFailsNew: true,
      maxSize: 10_000,
      layout: 'string',
      cookieName: 'sid',
      cookie: { path: '/', domain: 'example.com', httpOnly: true, sameSite: 'strict', secure: true, maxAge: 60, partitioned: false },
      cookieOnException: false,
      shouldSetCookie: () => true,
      decorator: 'sess'
    }, (app) => {
      app.get('/write', async (request) => {
        const sess = (request as unknown as { sess: { set: (key: string, value: unknown) => void } }).sess
        sess.set('n', 1)
        return { session: request.session ?? null }
      })
    }, {}, redis)
    const response = await setup.request('/write')
    t.same(response.json(), { session: null }, 'the session lives at request.sess only')
    const cookie = sessionCookie(response, 'sid') as string
    t.ok(cookie)
    t.ok(setup.app.hasDecorator('sessStore'))
    const db1 = redis.redis.admin({ db: 1 })
    t.teardown(() => db1.disconnect())
    const ttl = await db1.ttl('opt:' + idOf(cookie))
    t.ok(ttl > 50 && ttl <= 60, `db 1, prefix opt:, timeout 60 (TTL ${ttl})`)
  })

  t.test('timeout: null never expires, like timeout: 0', async (t) => {
    for (const timeout of [null, 0]) {
      const setup = await buildApp(t, { timeout, prefix: `never${String(timeout)}:` }, (app) => {
        app.get('/write', async (request) => {
          request.session.set('n', 1)
          return {}
        })
        app.get('/read', async (request) => ({ n: request.session.get('n') }))
      }, {}, redis)
      const cookie = sessionCookie(await setup.request('/write')) as string
      const key = `never${String(timeout)}:` + idOf(cookie)
      t.equal(await setup.admin.ttl(key), -1, `timeout ${String(timeout)}: no TTL after a write`)
      t.same((await setup.request('/read', cookie)).json(), { n: 1 })
      t.equal(await setup.admin.ttl(key), -1, `timeout ${String(timeout)}: no TTL after a read`)
    }
  })

  t.test('compress: {} takes the default threshold and algorithm', async (t) => {
    const setup = await buildApp(t, { compress: {}, prefix: 'zip:' }, (app) => {
      app.get('/write', async (request) => {
        request.session.set('small', 'x')
        return {}
      })
      app.get('/big', async (request) => {
        request.session.set('text', 'abc'.repeat(1000))
        return {}
      })
      app.get('/read', async (request) => ({ length: (request.session.get('text') as string | undefined)?.length ?? 0 }))
    }, {}, redis)
    const small = sessionCookie(await setup.request('/write')) as string
    t.match(await setup.admin.get('zip:' + idOf(small)), '{"small":"x"}', 'below 400 bytes: stored as is')
    const cookie = sessionCookie(await setup.request('/big', small)) ?? small
    const stored = await setup.admin.getBuffer('zip:' + idOf(cookie)) as Buffer
    t.ok(stored.length < 1000, `compressed (${stored.length} bytes for 3000 characters)`)
    t.same((await setup.request('/read', cookie)).json(), { length: 3000 })
  })

  t.test('two registrations with different decorators keep their own options', async (t) => {
    const app = Fastify()
    t.teardown(async () => await app.close())
    await app.register(redisSession, { secret: SECRET, url: redis.redis.url, prefix: 'one:', cookieName: 'one' })
    await app.register(redisSession, { secret: SECRET, url: redis.redis.url, prefix: 'two:', cookieName: 'two', decorator: 'other' })
    app.get('/', async (request) => {
      request.session.set('which', 'one')
      ;(request as unknown as { other: { set: (key: string, value: unknown) => void } }).other.set('which', 'two')
      return {}
    })
    const response = await app.inject('/')
    const one = sessionCookie(response, 'one') as string
    const two = sessionCookie(response, 'two') as string
    t.equal(await redis.admin.exists('one:' + idOf(one)), 1)
    t.equal(await redis.admin.exists('two:' + idOf(two)), 1)
  })
})
