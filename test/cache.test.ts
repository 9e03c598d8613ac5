import t, { type Test } from 'tap'
import { once } from 'node:events'
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify'
import { Cluster, type Redis, type RedisOptions } from 'ioredis'
import redisSession, { type RedisSessionOptions } from '../lib/index.js'
import { resolveOptions } from '../lib/options.js'
import { commandDelta, commandStats, startRedis, waitFor } from './helpers/index.js'
import { buildApp, counterRoutes, idOf, privateRedis, recordTraffic, SECRET, sessionCookie, type TestApp } from './helpers/app.js'
import { aclLine, CACHE_ACL_COMMANDS } from './helpers/deployment.js'

// The local cache (`cache`): two app instances, each with its own clients, on one private Redis
// and one prefix. What A changes, B sees once the invalidation reaches it, and never the old
// version after; reads of cached sessions send no command.

function routes (app: FastifyInstance): void {
  counterRoutes(app)
  app.get('/login', async (request) => {
    await request.session.regenerate(['n'])
    request.session.setOwner('ada')
    return {}
  })
  app.get('/logout', async (request) => {
    await request.session.destroy()
    return {}
  })
  app.get('/nested', async (request) => {
    request.session.set('user', { name: 'ada' })
    return {}
  })
  app.get('/remember', async (request) => {
    request.session.adjustTimeout(3600)
    return {}
  })
}

interface Instance extends TestApp {
  /** the connection the instance reads sessions with, a client of the test's own */
  client: Redis
  /** the plugin's invalidation connection (a duplicate of `client`) */
  channel: Redis
  /** the value of n this instance answers for the session */
  n: (cookie: string) => Promise<number | null>
}

/**
 * An app instance on `given`'s Redis with a client of the test's own, so the test can hold its
 * replies back and see the invalidation connection the plugin duplicates from it.
 */
async function instance (t: Test, given: Awaited<ReturnType<typeof privateRedis>>, options: Partial<RedisSessionOptions> = {}, channelRetry?: number): Promise<Instance> {
  const client = given.redis.admin({ retryStrategy: () => 50 })
  t.teardown(() => client.disconnect())
  // ready, so that register waits for tracking to be on
  await client.ping()
  let channel: Redis | undefined
  const duplicate = client.duplicate.bind(client) as (override?: RedisOptions) => Redis
  client.duplicate = ((override?: RedisOptions) => {
    channel = duplicate(channelRetry === undefined ? override : { ...override, retryStrategy: () => channelRetry })
    return channel
  }) as typeof client.duplicate
  const setup = await buildApp(t, { url: undefined, client, cache: true, ...options }, routes, {}, given)
  const n = async (cookie: string): Promise<number | null> => (await setup.request('/read', cookie)).json().n
  return { ...setup, client, channel: channel as Redis, n }
}

async function twoInstances (t: Test, options: Partial<RedisSessionOptions> = {}): Promise<[Instance, Instance]> {
  const given = await privateRedis(t)
  return [await instance(t, given, options), await instance(t, given, options)]
}

/** Resolves once the invalidation connection got an invalidation of `id`'s key. */
async function invalidationOf (channel: Redis, id: string): Promise<void> {
  await new Promise<void>((resolve) => {
    const listener = (_: Buffer, keys: Buffer[] | null): void => {
      if (keys !== null && !keys.some((key) => key.toString() === 'sess:' + id)) return
      channel.off('messageBuffer', listener)
      resolve()
    }
    channel.on('messageBuffer', listener)
  })
}

/** Resolves once `instance` serves the session from its cache again: a read costs no command. */
/** A writes the session and B hears of it: the invalidation itself has arrived, no sleep. */
async function writeHeardBy (a: Instance, b: Instance, cookie: string): Promise<void> {
  const invalidated = invalidationOf(b.channel, idOf(cookie))
  await a.request('/write', cookie)
  await invalidated
}

async function cachedAgain (instance: Instance, cookie: string): Promise<void> {
  await waitFor(async () => {
    await instance.request('/read', cookie)
    return Object.keys(await commandDelta(instance.admin, async () => await instance.request('/read', cookie))).length === 0
  }, { what: 'the cache to serve the session again' })
}

t.test('round trips: a cached read sends nothing, a write to a cached session one SET', async (t) => {
  const [a] = await twoInstances(t)
  const traffic = recordTraffic(a.client)
  const cookie = sessionCookie(await a.request('/write')) as string
  const measure = async (url: string): Promise<{ trips: number, ran: Record<string, number> }> => {
    traffic.reset()
    const ran = await commandDelta(a.admin, async () => await a.request(url, cookie))
    return { trips: traffic.roundTrips, ran }
  }
  t.same(await measure('/read'), { trips: 0, ran: {} }, 'its own save filled the cache')
  t.same(await measure('/write'), { trips: 1, ran: { set: 1 } })
  t.same(await measure('/read'), { trips: 0, ran: {} })
  t.equal(await a.n(cookie), 2)

  const other = await twoInstances(t)
  const fresh = sessionCookie(await other[0].request('/write')) as string
  const b = other[1]
  t.same(await commandDelta(b.admin, async () => await b.request('/read', fresh)), { getex: 1 }, 'the first read asks Redis')
  t.same(await commandDelta(b.admin, async () => await b.request('/read', fresh)), {}, 'the next one does not')
})

t.test('what A changes, B sees once the invalidation arrives, and never the old version after', async (t) => {
  const [a, b] = await twoInstances(t)
  const changes: Array<[string, (cookie: string) => Promise<string>, number | null]> = [
    ['a write', async (cookie) => { await a.request('/write', cookie); return cookie }, 2],
    ['regenerate()', async (cookie) => { await a.request('/login', cookie); return cookie }, null],
    ['destroy()', async (cookie) => { await a.request('/logout', cookie); return cookie }, null],
    ['sessionStore.destroy()', async (cookie) => { await a.app.sessionStore.destroy(idOf(cookie)); return cookie }, null],
    ['destroyByOwner()', async (cookie) => {
      const login = sessionCookie(await a.request('/login', cookie)) as string
      await b.n(login)
      await b.n(login)
      const invalidated = invalidationOf(b.channel, idOf(login))
      await a.app.sessionStore.destroyByOwner('ada')
      await invalidated
      return login
    }, null]
  ]
  for (const [what, change, expected] of changes) {
    const cookie = sessionCookie(await a.request('/write')) as string
    t.equal(await b.n(cookie), 1, `${what}: B reads the session`)
    t.same(await commandDelta(b.admin, async () => await b.n(cookie)), {}, `${what}: B has it cached`)
    const invalidated = invalidationOf(b.channel, idOf(cookie))
    const read = await change(cookie)
    await invalidated
    for (let i = 0; i < 5; i++) t.equal(await b.n(read), expected, `${what}: B sees the change`)
  }
  t.same(await commandDelta(b.admin, async () => await b.n(sessionCookie(await a.request('/write')) as string)), { set: 1, getex: 1 }, 'one more session: B asks Redis once')
})

t.test('the own saves of B update its cache at once, even when A has the session cached too', async (t) => {
  const [a, b] = await twoInstances(t)
  const cookie = sessionCookie(await a.request('/write')) as string
  await b.n(cookie)
  const invalidated = invalidationOf(a.channel, idOf(cookie))
  t.same(await commandDelta(b.admin, async () => await b.request('/write', cookie)), { set: 1 }, 'a write to a cached session: one SET')
  t.same(await commandDelta(b.admin, async () => t.equal(await b.n(cookie), 2)), {}, 'B serves what it wrote from its cache')
  await invalidated
  t.equal(await a.n(cookie), 2, 'A sees it once the invalidation arrived')
})

t.test('concurrent saves of one session on one instance: the cache ends with what Redis holds', async (t) => {
  const given = await privateRedis(t)
  const a = await instance(t, given)
  const cookie = sessionCookie(await a.request('/write')) as string
  for (let round = 0; round < 3; round++) {
    await Promise.all([a.request('/write', cookie), a.request('/write', cookie), a.request('/read', cookie), a.request('/write', cookie)])
    const stored = JSON.parse((await a.admin.get('sess:' + idOf(cookie)) as string).split('|')[1]).n
    for (let i = 0; i < 3; i++) t.equal(await a.n(cookie), stored)
  }
  t.same(await commandDelta(a.admin, async () => await a.n(cookie)), {}, 'and serves it from memory')
})

t.test('a read whose reply raced with an invalidation of its key is not cached', async (t) => {
  const [a, b] = await twoInstances(t)
  const cookie = sessionCookie(await a.request('/write')) as string
  const getexes = async (): Promise<number> => (await commandStats(b.admin)).get('getex') ?? 0
  const before = await getexes()
  // B's read runs in Redis, but its reply is held back until A's write was invalidated at B
  b.client.stream.pause()
  const racing = b.n(cookie)
  await waitFor(async () => await getexes() > before, { what: "B's read to run" })
  await writeHeardBy(a, b, cookie)
  b.client.stream.resume()
  t.equal(await racing, 1, 'the read ran before the write: it answers the old version')
  t.same(await commandDelta(b.admin, async () => t.equal(await b.n(cookie), 2)), { getex: 1 }, 'but did not cache it: the next read asks Redis')
  t.same(await commandDelta(b.admin, async () => t.equal(await b.n(cookie), 2)), {}, 'which caches the new one')
})

t.test('a save whose reply raced with an invalidation of its key is not cached', async (t) => {
  const [a, b] = await twoInstances(t)
  const cookie = sessionCookie(await a.request('/write')) as string
  await b.n(cookie)
  const sets = async (): Promise<number> => (await commandStats(b.admin)).get('set') ?? 0
  const before = await sets()
  b.client.stream.pause()
  const saving = b.request('/write', cookie)
  await waitFor(async () => await sets() > before, { what: "B's save to run" })
  await writeHeardBy(a, b, cookie)
  b.client.stream.resume()
  t.equal((await saving).json().n, 2)
  t.same(await commandDelta(b.admin, async () => t.equal(await b.n(cookie), 3)), { getex: 1 }, "B asks Redis and sees A's later write")
})

t.test('while the invalidation connection is down, nothing is served from the cache', async (t) => {
  const given = await privateRedis(t)
  const a = await instance(t, given)
  // B's invalidation connection comes back only after a while, to look at the time between
  const b = await instance(t, given, {}, 500)
  const cookie = sessionCookie(await a.request('/write')) as string
  await b.n(cookie)
  t.same(await commandDelta(b.admin, async () => await b.n(cookie)), {}, 'cached')
  const closed = once(b.channel, 'close')
  await given.admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub')
  await closed
  await a.request('/write', cookie)
  t.same(await commandDelta(b.admin, async () => t.equal(await b.n(cookie), 2)), { getex: 1 }, 'the cache was emptied')
  t.same(await commandDelta(b.admin, async () => t.equal(await b.n(cookie), 2)), { getex: 1 }, 'and is bypassed')
  t.same(await commandDelta(b.admin, async () => await b.request('/write', cookie)), { getex: 1, set: 1 }, 'even by its own saves')
  t.same(await commandDelta(b.admin, async () => t.equal(await b.n(cookie), 3)), { getex: 1 })
  await cachedAgain(b, cookie)
  await writeHeardBy(a, b, cookie)
  t.equal(await b.n(cookie), 4, 'tracking is on again, with the new connection')
})

t.test('an invalidation connection that dies silently is dropped by its heartbeat: the cache is off until it is back', async (t) => {
  const given = await privateRedis(t)
  const a = await instance(t, given)
  // the heartbeat PINGs every commandTimeout; one unanswered by the next PING drops the connection
  const b = await instance(t, given, { commandTimeout: 500 })
  const cookie = sessionCookie(await a.request('/write')) as string
  await b.n(cookie)
  t.same(await commandDelta(b.admin, async () => await b.n(cookie)), {}, 'cached')
  // B reads nothing more from its invalidation connection, as when a NAT dropped it: no close, no error
  b.channel.stream.pause()
  await a.request('/write', cookie)
  await once(b.channel, 'close')
  t.same(await commandDelta(b.admin, async () => t.equal(await b.n(cookie), 2)), { getex: 1 }, 'the cache was emptied: the write B did not hear of is read')
  await cachedAgain(b, cookie)
  await writeHeardBy(a, b, cookie)
  t.equal(await b.n(cookie), 3, 'tracking is on again, with a new connection')
})

t.test('turning tracking on again after a failure that is no refusal: a new invalidation connection tries again', async (t) => {
  const [a, b] = await twoInstances(t)
  const cookie = sessionCookie(await a.request('/write')) as string
  const ask = b.channel.client.bind(b.channel) as (...args: unknown[]) => Promise<unknown>
  let failures = 0
  // the first CLIENT ID of the next connection times out (ioredis sends CLIENT SETINFO through here too)
  b.channel.client = (async (...args: unknown[]) => {
    if (args[0] !== 'ID' || failures > 0) return await ask(...args)
    failures++
    throw new Error('Command timed out')
  }) as unknown as typeof b.channel.client
  await b.admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub')
  await cachedAgain(b, cookie)
  t.equal(failures, 1)
  await writeHeardBy(a, b, cookie)
  t.equal(await b.n(cookie), 2)
})

t.test('a read that fails leaves nothing cached; sweep and ping pass through', async (t) => {
  const [a] = await twoInstances(t)
  const cookie = sessionCookie(await a.request('/write')) as string
  const key = 'sess:' + idOf(cookie)
  await a.admin.del(key)
  await a.admin.hset(key, 'n', '1')
  t.equal((await a.request('/read', cookie)).statusCode, 500)
  t.equal((await a.request('/read', cookie)).statusCode, 500, 'still not cached')
  t.equal(await a.app.sessionStore.sweep(), 0)
  await a.app.sessionStore.ping()
  t.same(await a.app.sessionStore.get(idOf(sessionCookie(await a.request('/write')) as string)), { n: 1 })
})

t.test('a reconnect of the reading connection turns tracking on again', async (t) => {
  const [a, b] = await twoInstances(t)
  const cookie = sessionCookie(await a.request('/write')) as string
  const id = await b.client.client('ID')
  const ready = once(b.client, 'ready')
  await b.admin.call('CLIENT', 'KILL', 'ID', String(id))
  await ready
  await cachedAgain(b, cookie)
  await writeHeardBy(a, b, cookie)
  t.equal(await b.n(cookie), 2)
})

t.test('a restart of Redis empties the cache; tracking comes back with it', async (t) => {
  const [a, b] = await twoInstances(t)
  const cookie = sessionCookie(await a.request('/write')) as string
  await b.n(cookie)
  await b.redis.restart()
  await waitFor(async () => b.client.status === 'ready' && (await b.request('/read', cookie)).statusCode === 200, { what: 'B to answer again' })
  t.equal(await b.n(cookie), null, 'the session went with the restart; B does not serve it from memory')
  const fresh = sessionCookie(await a.request('/write')) as string
  await cachedAgain(b, fresh)
  await writeHeardBy(a, b, fresh)
  t.equal(await b.n(fresh), 2)
})

t.test('a flush empties the cache', async (t) => {
  const [a, b] = await twoInstances(t)
  const cookie = sessionCookie(await a.request('/write')) as string
  await b.n(cookie)
  const flushed = invalidationOf(b.channel, 'none')
  await b.admin.flushall()
  await flushed
  t.equal(await b.n(cookie), null)
})

t.test('expiry: a cached read slides it once touchAfter has passed, without waiting for it', async (t) => {
  const given = await privateRedis(t)
  const a = await instance(t, given, { timeout: 100, cache: { touchAfter: 1 } })
  const cookie = sessionCookie(await a.request('/write')) as string
  const key = 'sess:' + idOf(cookie)
  t.same(await commandDelta(a.admin, async () => await a.n(cookie)), {}, 'within touchAfter: nothing sent')
  await new Promise((resolve) => setTimeout(resolve, 1100))
  t.ok(await a.admin.pttl(key) < 99000)
  t.same(await commandDelta(a.admin, async () => {
    await a.n(cookie)
    await a.client.ping()
  }), { expire: 1, ping: 1 }, 'after touchAfter: one EXPIRE')
  t.ok(await a.admin.pttl(key) > 99000, 'the full timeout again')
  t.same(await commandDelta(a.admin, async () => await a.n(cookie)), {}, 'and not again right after')

  // a session with its own timeout slides by that one
  await a.request('/remember', cookie)
  await new Promise((resolve) => setTimeout(resolve, 1100))
  await a.n(cookie)
  await a.client.ping()
  t.ok(await a.admin.ttl(key) > 3000, 'its own timeout')
})

t.test('expiry: a failed slide is logged and tried again by the next read', async (t) => {
  const given = await privateRedis(t)
  const logs: string[] = []
  const a = await instance(t, given, { timeout: 100, cache: { touchAfter: 0 } })
  a.app.log.warn = ((_: unknown, message: string) => { logs.push(message) }) as typeof a.app.log.warn
  const cookie = sessionCookie(await a.request('/write')) as string
  const expire = a.client.expire.bind(a.client)
  a.client.expire = (async () => { throw new Error('refused') }) as unknown as typeof a.client.expire
  await a.n(cookie)
  await waitFor(async () => logs.length > 0, { what: 'the failure to be logged' })
  t.same(logs, ['sliding the expiry of a cached session failed'])
  a.client.expire = expire
  t.same(await commandDelta(a.admin, async () => {
    await a.n(cookie)
    await a.client.ping()
  }), { expire: 1, ping: 1 })
})

t.test('a cached session whose expiry in Redis has passed is asked for again', async (t) => {
  const given = await privateRedis(t)
  const a = await instance(t, given, { timeout: 1, cache: { touchAfter: 0 } })
  const cookie = sessionCookie(await a.request('/write')) as string
  // the key stays, and its invalidation is held back: what the cache goes by is the expiry it believes
  a.channel.stream.pause()
  await a.admin.persist('sess:' + idOf(cookie))
  await new Promise((resolve) => setTimeout(resolve, 1100))
  t.same(await commandDelta(a.admin, async () => t.equal(await a.n(cookie), 1)), { getex: 1 })
  a.channel.stream.resume()
})

t.test('without timeout nothing slides', async (t) => {
  const given = await privateRedis(t)
  const a = await instance(t, given, { timeout: 0, cache: { touchAfter: 0 } })
  const cookie = sessionCookie(await a.request('/write')) as string
  t.same(await commandDelta(a.admin, async () => await a.n(cookie)), {})
})

t.test('nested data read and not changed: nothing is written and the session stays cached', async (t) => {
  const given = await privateRedis(t)
  const a = await instance(t, given)
  const cookie = sessionCookie(await a.request('/nested')) as string
  t.same(await commandDelta(a.admin, async () => await a.n(cookie)), {})
  t.same(await commandDelta(a.admin, async () => await a.n(cookie)), {})
})

t.test('LRU mode (redisTtl: false): nothing slides in Redis', async (t) => {
  const given = await privateRedis(t)
  const a = await instance(t, given, { redisTtl: false, cache: { touchAfter: 0 } })
  const cookie = sessionCookie(await a.request('/write')) as string
  t.same(await commandDelta(a.admin, async () => t.equal(await a.n(cookie), 1)), {})
})

t.test('maxEntries holds: the least recently used session goes first', async (t) => {
  const given = await privateRedis(t)
  const a = await instance(t, given, { cache: { maxEntries: 2 } })
  const [first, second, third] = [
    sessionCookie(await a.request('/write')) as string,
    sessionCookie(await a.request('/write')) as string,
    sessionCookie(await a.request('/write')) as string
  ]
  t.same(await commandDelta(a.admin, async () => await a.n(first)), { getex: 1 }, 'the first went when the third came')
  t.same(await commandDelta(a.admin, async () => await a.n(third)), {}, 'the third is cached')
  t.same(await commandDelta(a.admin, async () => await a.n(second)), { getex: 1 }, 'the second went when the first came back')
})

t.test('compressed sessions are cached as they decode', async (t) => {
  const given = await privateRedis(t)
  const a = await instance(t, given, { compress: { threshold: 0 } })
  const cookie = sessionCookie(await a.request('/write')) as string
  await a.request('/write', cookie)
  t.same(await commandDelta(a.admin, async () => t.equal(await a.n(cookie), 2)), {})
})

t.test('a decode hook that stops taking a cached session: Redis is asked, and the failure is its answer', async (t) => {
  const given = await privateRedis(t)
  let refuse = false
  const decode = (payload: string): Record<string, unknown> => {
    if (refuse) throw new Error('no longer decodable')
    return JSON.parse(payload)
  }
  const a = await instance(t, given, { decode })
  const cookie = sessionCookie(await a.request('/write')) as string
  t.same(await commandDelta(a.admin, async () => t.equal(await a.n(cookie), 1)), {}, 'cached')
  refuse = true
  const ran = await commandDelta(a.admin, async () => {
    const response = await a.request('/read', cookie)
    t.equal(response.statusCode, 500)
    t.equal(response.json().code, 'FST_RS_DECODE_FAILED')
  })
  t.same(ran, { getex: 1 })
  refuse = false
  t.same(await commandDelta(a.admin, async () => t.equal(await a.n(cookie), 1)), { getex: 1 }, 'the failed read cached nothing')
})

t.test('register', async (t) => {
  t.test('with the plugin\'s own connection: it makes and closes a second one', async (t) => {
    const { redis, admin } = await privateRedis(t)
    const setup = await buildApp(t, { cache: true }, routes, {}, { redis, admin })
    const clients = async (): Promise<number> => (await admin.call('CLIENT', 'LIST') as string).trim().split('\n').length
    t.equal(await clients(), 3, 'admin, reader and invalidation connection')
    const cookie = sessionCookie(await setup.request('/write')) as string
    t.same(await commandDelta(admin, async () => await setup.request('/read', cookie)), {})
    await setup.app.close()
    await waitFor(async () => await clients() === 1, { what: 'the connections to close' })
  })

  t.test('closing turns tracking off on a client it was given, and leaves it open', async (t) => {
    const given = await privateRedis(t)
    const a = await instance(t, given)
    await a.app.close()
    t.equal(a.client.status, 'ready')
    t.match(await a.client.call('CLIENT', 'TRACKINGINFO'), ['flags', ['off']])
  })

  t.test('an unreachable Redis does not hold register up; the cache starts when it answers', async (t) => {
    const given = await privateRedis(t)
    await given.redis.kill()
    const client = given.redis.admin({ retryStrategy: () => 50, lazyConnect: true })
    t.teardown(() => client.disconnect())
    client.connect().catch(() => {})
    const setup = await buildApp(t, { url: undefined, client, cache: true }, routes, {}, given)
    await given.redis.revive()
    await waitFor(async () => (await setup.request('/write')).statusCode === 200, { what: 'Redis to answer' })
    const cookie = sessionCookie(await setup.request('/write')) as string
    const admin = given.redis.admin()
    t.teardown(() => admin.disconnect())
    await waitFor(async () => Object.keys(await commandDelta(admin, async () => await setup.request('/read', cookie))).length === 0, { what: 'the cache to serve' })
  })
})

t.test('options: every bad path is named', async (t) => {
  const fail = async (options: Record<string, unknown>): Promise<string> => {
    const app = Fastify()
    const err = await app.register(redisSession, { secret: SECRET, ...options } as RedisSessionOptions).ready().then(() => undefined, (err: Error) => err)
    await app.close()
    t.equal((err as FastifyError | undefined)?.code, 'FST_RS_INVALID_OPTIONS')
    return (err as Error).message
  }
  t.match(await fail({ cache: { size: 1 } }), '/cache')
  const bad = await fail({ cache: { maxEntries: 0, touchAfter: -1 } })
  t.match(bad, '/cache/maxEntries')
  t.match(bad, '/cache/touchAfter')
  t.match(await fail({ cache: 'yes' }), '/cache')
  t.match(await fail({ cache: true, layout: 'hash' }), "/cache only supports layout 'string' for now")
  t.match(await fail({ cache: true, cluster: { nodes: [{ host: '127.0.0.1', port: 7000 }] } }), '/cache does not support Redis Cluster yet')
  const cluster = new Cluster([{ host: '127.0.0.1', port: 1 }], { lazyConnect: true })
  t.match(await fail({ cache: true, client: cluster }), '/cache does not support Redis Cluster yet')
  t.match(await fail({ cache: { touchAfter: 60 }, timeout: 60 }), '/cache/touchAfter must be less than /timeout (60)')
  t.match(await fail({ cache: true, replicas: { count: 1, timeout: 100 } }), '/cache cannot be combined with /replicas yet')
  t.match(await fail({ cache: true, absoluteTimeout: 3600 }), '/cache cannot be combined with /absoluteTimeout yet')
  t.match(await fail({ cache: { touchAfter: 1200 } }), '/cache/touchAfter must be less than /timeout (1200)')
  t.same(resolveOptions({ secret: SECRET, cache: true }).cache, { maxEntries: 10000, touchAfter: 120 })
  t.same(resolveOptions({ secret: SECRET, cache: { maxEntries: 5 }, timeout: null }).cache, { maxEntries: 5, touchAfter: 0 })
  t.same(resolveOptions({ secret: SECRET, cache: { touchAfter: 9 }, timeout: 0 }).cache, { maxEntries: 10000, touchAfter: 9 })
  t.equal(resolveOptions({ secret: SECRET, cache: false }).cache, undefined)
})

t.test('ACL: a user without what the cache needs fails register, naming it', async (t) => {
  const redis = await startRedis({
    acl: [
      'user default on nopass ~* &* +@all',
      aclLine('sessions', 'sess:'),
      aclLine('cached', 'sess:', ' ' + CACHE_ACL_COMMANDS),
      aclLine('no-eval', 'sess:').replace(' +eval ', ' ')
    ]
  })
  t.teardown(async () => await redis.stop())
  const admin = redis.admin()
  t.teardown(() => admin.disconnect())
  const given = { redis, admin }
  const urlOf = (user: string): string => `redis://${user}:${user}-secret@127.0.0.1:${redis.port}`
  const registerError = async (user: string): Promise<FastifyError | undefined> => {
    const app = Fastify()
    t.teardown(async () => await app.close())
    return await app.register(redisSession, { secret: SECRET, url: urlOf(user), cache: true }).ready().then(() => undefined, (err: FastifyError) => err)
  }

  const denied = await registerError('sessions')
  t.equal(denied?.code, 'FST_RS_CONNECTION_REJECTED')
  t.match(denied?.message, 'the ACL denies the user client|tracking, client|id, subscribe on keys like sess:access-check')
  // without EVAL nothing can be asked beforehand: the first refusal says it
  const refused = await registerError('no-eval')
  t.equal(refused?.code, 'FST_RS_CONNECTION_REJECTED')
  t.match(refused?.message, /CLIENT ID failed \(NOPERM.*needs Redis 6 or later, and an ACL user needs \+client\|id \+client\|tracking \+subscribe and the channel __redis__:invalidate/)

  const logs: string[] = []
  const a = await buildApp(t, { url: urlOf('cached'), cache: true }, routes, {}, given)
  a.app.log.warn = ((_: unknown, message: string) => { logs.push(message) }) as typeof a.app.log.warn
  const cookie = sessionCookie(await a.request('/write')) as string
  t.same(await commandDelta(admin, async () => await a.request('/read', cookie)), {}, 'the recommended line with the cache\'s commands works')

  // the ACL changes under a running app: the cache stays off, and says so
  await admin.acl('SETUSER', 'cached', '-subscribe')
  await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub')
  await waitFor(async () => logs.includes('the session cache stays off'), { what: 'the refusal to be logged' })
  t.same(await commandDelta(admin, async () => await a.request('/read', cookie)), { getex: 1 })
  t.same(await commandDelta(admin, async () => await a.request('/read', cookie)), { getex: 1 })
})
