// A CommonJS consumer: Node's require() of this ESM package (Node >= 20.19), typed by
// TypeScript's `import = require()` under module NodeNext.
import fastify = require('fastify')
import redisSessions = require('fastify-redis-sessions')
import { describe, expect, test } from 'tstyche'

declare module 'fastify-redis-sessions' {
  interface SessionData {
    cart: string[]
  }
}

const app = fastify.default()

describe('require("fastify-redis-sessions")', () => {
  test('gives the module namespace: default, redisSession, errorCodes', () => {
    expect(redisSessions.redisSession).type.toBe(redisSessions.default)
    expect(app.register).type.toBeCallableWith(redisSessions.default, { secret: 'a-secret-that-is-at-least-32-characters' })
    expect(app.register).type.not.toBeCallableWith(redisSessions.redisSession, { secret: 1 })
    expect(new redisSessions.errorCodes.FST_RS_STORE_UNAVAILABLE('down').statusCode).type.toBe<503>()
  })

  test('the types are reachable through the namespace', () => {
    expect<redisSessions.RedisSessionOptions['secret']>().type.toBe<string | string[]>()
    expect<redisSessions.SessionData['cart']>().type.toBe<string[]>()
  })

  test('declaration merging works from CommonJS too', () => {
    app.get('/cart', async (request) => {
      expect(request.session.get('cart', [])).type.toBe<string[]>()
      expect(request.session.set('cart', 'one')).type.toRaiseError(2345)
      expect(app.sessionStore).type.toBe<redisSessions.SessionStore>()
      return {}
    })
  })
})
