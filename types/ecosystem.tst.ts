// This plugin's declarations are loaded before those of @fastify/flash (which @fastify/passport
// also loads), as in an app that imports this plugin first.
import redisSession from 'fastify-redis-sessions'
import Fastify from 'fastify'
import fastifyFlash from '@fastify/flash'
import fastifyPassport from '@fastify/passport'
import fastifyCsrf from '@fastify/csrf-protection'
import { Strategy as LocalStrategy } from 'passport-local'
import { describe, expect, test } from 'tstyche'

const app = Fastify()
await app.register(redisSession, { secret: 'a-secret-that-is-at-least-32-characters' })

describe('@fastify/flash', () => {
  test('registers after this plugin', () => {
    expect(app.register).type.toBeCallableWith(fastifyFlash)
  })

  test('both declarations of flash merge; the calls stay the same', () => {
    app.get('/flash', async (request, reply) => {
      expect(request.flash('info', 'saved')).type.toBe<number>()
      expect(request.flash('info', ['one', 'two'])).type.toBe<number>()
      expect(reply.flash('info')).type.toBe<string[]>()
      expect(reply.flash()).type.toBe<Record<string, string[]>>()
      return {}
    })
  })
})

describe('@fastify/passport', () => {
  test('initialize and secureSession register after this plugin', () => {
    expect(app.register).type.toBeCallableWith(fastifyPassport.initialize())
    expect(app.register).type.toBeCallableWith(fastifyPassport.secureSession())
    expect(fastifyPassport.use).type.toBeCallableWith('local', new LocalStrategy((_username, _password, done) => done(null, false)))
  })

  test('its request decorators sit next to the session', () => {
    app.post('/logout', async (request) => {
      expect(request.logout()).type.toBe<Promise<void>>()
      expect(request.isAuthenticated()).type.toBe<boolean>()
      expect(request.session.regenerate(['session'])).type.toBe<Promise<void>>()
      return {}
    })
  })
})

describe('@fastify/csrf-protection', () => {
  test('registers in both session modes', () => {
    expect(app.register).type.toBeCallableWith(fastifyCsrf, { sessionPlugin: '@fastify/session' })
    expect(app.register).type.toBeCallableWith(fastifyCsrf, { sessionPlugin: '@fastify/secure-session' })
  })

  test('generateCsrf and csrfProtection', () => {
    app.get('/form', async (_request, reply) => {
      expect(reply.generateCsrf()).type.toBe<string>()
      return {}
    })
    expect(app.post).type.toBeCallableWith('/submit', { onRequest: app.csrfProtection }, async () => 'ok')
  })
})
