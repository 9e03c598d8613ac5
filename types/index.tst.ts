import Fastify, { type FastifyPluginAsync, type FastifyRequest } from 'fastify'
import type { Cluster, Redis } from 'ioredis'
import { describe, expect, test } from 'tstyche'
import redisSession, {
  errorCodes,
  redisSession as named,
  type CacheOptions,
  type MemcachedClient,
  type MemcachedOptions,
  type MigrateFromOptions,
  type RedisSessionOptions,
  type Session,
  type SessionData,
  type SessionEvent,
  type SessionStore,
  type SessionStoreEvents,
  type SessionTraceContext
} from 'fastify-redis-sessions'

const app = Fastify()
const secret = 'a-secret-that-is-at-least-32-characters'

describe('the plugin', () => {
  test('default and named export are the same plugin', () => {
    expect(named).type.toBe(redisSession)
    expect(redisSession).type.toBeAssignableTo<FastifyPluginAsync<RedisSessionOptions>>()
  })

  test('register takes the options', () => {
    expect(app.register).type.toBeCallableWith(redisSession, { secret })
    expect(app.register).type.toBeCallableWith(redisSession, {
      secret: [secret, 'an-older-secret-still-accepted-for-a-while'],
      url: 'redis://localhost:6379/0',
      timeout: null,
      cookie: { maxAge: 3600, secure: 'auto', sameSite: 'strict' },
      shouldSetCookie: (request: FastifyRequest) => request.url !== '/cached'
    })
  })

  test('register rejects options of the wrong type', () => {
    expect(app.register).type.not.toBeCallableWith(redisSession, {})
    expect(app.register).type.not.toBeCallableWith(redisSession, { secret: 32 })
    expect(app.register).type.not.toBeCallableWith(redisSession, { secret, timeout: '20m' })
    expect(app.register).type.not.toBeCallableWith(redisSession, { secret, cookie: { sameSite: 'sometimes' } })
    expect(app.register).type.not.toBeCallableWith(redisSession, { secret, colour: 'blue' })
  })

  test('migrateFrom names the old cookie and its secrets; prefixes are optional', () => {
    expect<{ cookieName: 'sessionId', secret: 'keyboard cat' }>().type.toBeAssignableTo<MigrateFromOptions>()
    expect(app.register).type.toBeCallableWith(redisSession, {
      secret,
      migrateFrom: { cookieName: 'connect.sid', secret: ['keyboard cat', 'older'], prefix: 'sess:', cookiePrefix: 's:' }
    })
    expect(app.register).type.not.toBeCallableWith(redisSession, { secret, migrateFrom: { secret: 'keyboard cat' } })
  })

  test('RedisSessionOptions requires only the secret', () => {
    expect<{ secret: string }>().type.toBeAssignableTo<RedisSessionOptions>()
    expect<{ url: string }>().type.not.toBeAssignableTo<RedisSessionOptions>()
    expect<RedisSessionOptions['client']>().type.toBe<Redis | Cluster | undefined>()
  })

  test('memcached: servers with SASL credentials, or a memjs client', () => {
    expect<{ secret: string, memcached: { servers: string[], username: string, password: string } }>().type.toBeAssignableTo<RedisSessionOptions>()
    expect<{ secret: string, memcached: { servers: string } }>().type.toBeAssignableTo<RedisSessionOptions>()
    expect<{ secret: string, memcached: { servers: number } }>().type.not.toBeAssignableTo<RedisSessionOptions>()
    expect<RedisSessionOptions['memcached']>().type.toBe<MemcachedOptions | undefined>()
    expect<MemcachedOptions['client']>().type.toBe<MemcachedClient | undefined>()
  })

  test('cache: true or its settings', () => {
    expect<{ secret: string, cache: true }>().type.toBeAssignableTo<RedisSessionOptions>()
    expect<{ secret: string, cache: { maxEntries: number, touchAfter: number } }>().type.toBeAssignableTo<RedisSessionOptions>()
    expect<RedisSessionOptions['cache']>().type.toBe<boolean | CacheOptions | undefined>()
  })
})

describe('request.session', () => {
  test('metadata and lifecycle', () => {
    app.get('/', async (request) => {
      const session = request.session
      expect(session).type.toBe<Session & SessionData>()
      expect(session.id).type.toBe<string>()
      expect(session.isNew).type.toBe<boolean>()
      expect(session.createdAt).type.toBe<number>()
      expect(session.keys()).type.toBe<string[]>()
      expect(session.has('anything')).type.toBe<boolean>()
      expect(session.delete('anything')).type.toBe<boolean>()
      expect(session.clear()).type.toBe<void>()
      expect(session.changed()).type.toBe<void>()
      expect(session.touch()).type.toBe<void>()
      expect(session.adjustTimeout(30 * 24 * 3600)).type.toBe<void>()
      expect(session.regenerate()).type.toBe<Promise<void>>()
      expect(session.regenerate(['user'])).type.toBe<Promise<void>>()
      expect(session.destroy()).type.toBe<Promise<void>>()
      expect(session.peekFlash()).type.toBe<Record<string, string[]>>()
      expect(session.peekFlash('info')).type.toBe<string[]>()
      return {}
    })
  })

  test('set returns the session, so calls chain', () => {
    app.get('/chain', async (request) => {
      expect(request.session.set('a', 1).set('b', 2)).type.toBe<Session & SessionData>()
      return {}
    })
  })

  test('the session is read-only where it must be', () => {
    app.get('/readonly', async (request) => {
      expect(() => { request.session.id = 'mine' }).type.toRaiseError(2540)
      expect(() => { request.session.isNew = false }).type.toRaiseError(2540)
      return {}
    })
  })

  test('undeclared keys are unknown, through get and property access', () => {
    app.get('/unknown', async (request) => {
      expect(request.session.get('somethingElse')).type.toBe<unknown>()
      expect(request.session.get('somethingElse', 'fallback')).type.toBe<unknown>()
      expect(request.session.somethingElse).type.toBe<unknown>()
      expect(request.session.set('somethingElse', { any: 'value' })).type.not.toRaiseError()
      request.session._csrf = 'property access, as @fastify/session plugins do'
      return {}
    })
  })

  test('flash messages live in the session as { type: string[] }', () => {
    expect<SessionData['flash']>().type.toBe<Record<string, string[]> | undefined>()
  })
})

describe('flash', () => {
  test('request.flash adds and counts', () => {
    app.get('/flash', async (request, reply) => {
      expect(request.flash('info', 'saved')).type.toBe<number>()
      expect(request.flash('info', ['one', 'two'])).type.toBe<number>()
      expect(request.flash('info', 'Hello %s, %d new', 'Ada', 3)).type.toBe<number>()
      expect(() => request.flash()).type.toRaiseError()
      expect(reply.flash('info')).type.toBe<string[]>()
      expect(reply.flash()).type.toBe<Record<string, string[]>>()
      return {}
    })
  })
})

describe('fastify.sessionStore', () => {
  test('sessions by id, outside any request', () => {
    expect(app.sessionStore).type.toBe<SessionStore>()
    expect(app.sessionStore.get('id')).type.toBe<Promise<Record<string, unknown> | null>>()
    expect(app.sessionStore.destroy('id')).type.toBe<Promise<void>>()
    expect(app.sessionStore.ping()).type.toBe<Promise<void>>()
    expect(app.sessionStore.client).type.toBe<Redis | Cluster>()
    expect((app.sessionStore as unknown as SessionStore<MemcachedClient>).client).type.toBe<MemcachedClient>()
  })
})

describe('visibility', () => {
  test('request.session.ended is a read-only boolean', () => {
    app.get('/ended', async (request) => {
      expect(request.session.ended).type.toBe<boolean>()
      expect(() => { request.session.ended = false }).type.toRaiseError(2540)
      return {}
    })
  })

  test('sessionStore events: on, once, off with typed payloads', () => {
    expect(app.sessionStore.on('created', (event) => {
      expect(event).type.toBe<SessionEvent>()
      expect(event.owner).type.toBe<string | undefined>()
    })).type.toBe<SessionStore>()
    expect(app.sessionStore.on('regenerated', (event) => {
      expect(event.previousId).type.toBe<string>()
    })).type.toBe<SessionStore>()
    expect(app.sessionStore.once('destroyed', async ({ id }) => { expect(id).type.toBe<string>() })).type.toBe<SessionStore>()
    const onExpired = (event: SessionEvent): void => {}
    expect(app.sessionStore.off('expired', onExpired)).type.toBe<SessionStore>()
    expect(app.sessionStore.on).type.not.toBeCallableWith('deleted', () => {})
    expect(app.sessionStore.on).type.not.toBeCallableWith('created', (id: number) => {})
    expect<keyof SessionStoreEvents>().type.toBe<'created' | 'regenerated' | 'destroyed' | 'expired'>()
  })

  test('tracing channel contexts carry layout, outcome and bytes, no id', () => {
    expect<SessionTraceContext['layout']>().type.toBe<'string' | 'hash' | 'bucketed' | 'memcached'>()
    expect<SessionTraceContext['outcome']>().type.toBe<'loaded' | 'missing' | 'saved' | 'unchanged' | 'lost' | 'destroyed' | undefined>()
    expect<SessionTraceContext['bytes']>().type.toBe<number | undefined>()
    expect<SessionTraceContext>().type.not.toHaveProperty('id')
  })
})

describe('route config', () => {
  test('session: false opts a route out', () => {
    expect(app.get).type.toBeCallableWith('/health', { config: { session: false } }, async () => 'ok')
    expect(app.get).type.not.toBeCallableWith('/health', { config: { session: 'no' } }, async () => 'ok')
  })
})

describe('errorCodes', () => {
  test('every error is a FastifyError with its code and status', () => {
    const err = new errorCodes.FST_RS_STORE_UNAVAILABLE('down')
    expect(err.code).type.toBe<'FST_RS_STORE_UNAVAILABLE'>()
    expect(err.statusCode).type.toBe<503>()
    expect(new errorCodes.FST_RS_SESSION_TOO_LARGE(2, 'maxSize (1)').code).type.toBe<'FST_RS_SESSION_TOO_LARGE'>()
    expect(errorCodes).type.toHaveProperty('FST_RS_INVALID_OPTIONS')
    expect(errorCodes).type.toHaveProperty('FST_RS_DECODE_FAILED')
  })

  test('instanceof narrows an unknown error', () => {
    app.setErrorHandler(async (error: unknown, _request, reply) => {
      if (error instanceof errorCodes.FST_RS_STORE_UNAVAILABLE) {
        expect(error.code).type.toBe<'FST_RS_STORE_UNAVAILABLE'>()
        reply.header('retry-after', '1')
      }
      throw error
    })
  })
})
