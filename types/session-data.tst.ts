import Fastify from 'fastify'
import { describe, expect, test } from 'tstyche'
import redisSession, { type SessionData } from 'fastify-redis-sessions'

// the merging README.md shows; it applies to every file of this project
declare module 'fastify-redis-sessions' {
  interface SessionData {
    views: number
    user?: { id: string, name: string }
    lastSeen: Date | null
  }
}

const app = Fastify()
await app.register(redisSession, { secret: 'a-secret-that-is-at-least-32-characters' })

describe('SessionData declaration merging', () => {
  test('the declared keys are part of SessionData', () => {
    expect<SessionData['views']>().type.toBe<number>()
    expect<SessionData['user']>().type.toBe<{ id: string, name: string } | undefined>()
  })

  test('get: the declared type, or undefined when absent', () => {
    app.get('/get', async (request) => {
      expect(request.session.get('views')).type.toBe<number | undefined>()
      expect(request.session.get('user')).type.toBe<{ id: string, name: string } | undefined>()
      return {}
    })
  })

  test('get with a default: never undefined, but a stored null stays possible', () => {
    app.get('/default', async (request) => {
      expect(request.session.get('views', 0)).type.toBe<number>()
      expect(request.session.get('views', 0) + 1).type.toBe<number>()
      expect(request.session.get('user', { id: '0', name: 'guest' })).type.toBe<{ id: string, name: string }>()
      expect(request.session.get('lastSeen', new Date())).type.toBe<Date | null>()
      expect(request.session.get('views', 'zero')).type.toRaiseError(2345)
      return {}
    })
  })

  test('set checks the value against the declared type', () => {
    app.get('/set', async (request) => {
      expect(request.session.set('views', 1)).type.not.toRaiseError()
      expect(request.session.set('views', undefined)).type.not.toRaiseError()
      expect(request.session.set('views', 'x')).type.toRaiseError(2345)
      expect(request.session.set('user', { id: '1' })).type.toRaiseError(2345)
      return {}
    })
  })

  test('property access is typed the same way', () => {
    app.get('/props', async (request) => {
      expect(request.session.views).type.toBe<number>()
      expect(request.session.user).type.toBe<{ id: string, name: string } | undefined>()
      expect(() => { request.session.views = 'x' }).type.toRaiseError(2322)
      return {}
    })
  })

  test('undeclared keys still work, as unknown', () => {
    app.get('/other', async (request) => {
      expect(request.session.get('other')).type.toBe<unknown>()
      expect(request.session.other).type.toBe<unknown>()
      expect(request.session.set('other', 'anything')).type.not.toRaiseError()
      return {}
    })
  })

  test('toJSON returns the data, every key optional', () => {
    app.get('/json', async (request) => {
      expect(request.session.toJSON().views).type.toBe<number | undefined>()
      return {}
    })
  })
})
