import Fastify from 'fastify'
import { describe, expect, test } from 'tstyche'
import redisSession, { errorCodes, type SessionDetails, type SessionInfo } from 'fastify-redis-sessions'

// the merging README.md shows for setOwner's info; it applies to every file of this project
declare module 'fastify-redis-sessions' {
  interface SessionInfo {
    userAgent?: string
    ip?: string
  }
}

const app = Fastify()
await app.register(redisSession, { secret: 'a-secret-that-is-at-least-32-characters' })

describe('setOwner(owner, info?)', () => {
  test('an owner, with or without info', () => {
    app.get('/login', async (request) => {
      expect(request.session.setOwner('user-1')).type.toBe<void>()
      expect(request.session.setOwner('user-1', { userAgent: 'Firefox', ip: '127.0.0.1' })).type.toBe<void>()
      expect(request.session.setOwner('user-1', { userAgent: 'Firefox', signedInAt: 1 })).type.toBe<void>()
      return {}
    })
  })

  test('info is an object whose declared fields keep their types', () => {
    app.get('/bad', async (request) => {
      expect(request.session.setOwner).type.not.toBeCallableWith('user-1', 'Firefox')
      expect(request.session.setOwner).type.not.toBeCallableWith('user-1', { userAgent: 42 })
      expect(request.session.setOwner).type.not.toBeCallableWith({ userAgent: 'Firefox' })
      return {}
    })
  })
})

describe('fastify.sessionStore.listByOwner', () => {
  test('resolves to the details of each session', async () => {
    expect(app.sessionStore.listByOwner('user-1')).type.toBe<Promise<SessionDetails[]>>()
    for (const device of await app.sessionStore.listByOwner('user-1')) {
      expect(device.id).type.toBe<string>()
      expect(device.createdAt).type.toBe<number>()
      expect(device.lastSeenAt).type.toBe<number | null>()
      expect(device.expiresAt).type.toBe<number | null>()
      expect(device.info).type.toBe<SessionInfo | null>()
      expect(device.info?.userAgent).type.toBe<string | undefined>()
      expect(device.info?.other).type.toBe<unknown>()
    }
  })

  test('destroyByOwner still resolves to how many sessions it ended', () => {
    expect(app.sessionStore.destroyByOwner('user-1')).type.toBe<Promise<number>>()
  })
})

describe('errorCodes.FST_RS_INVALID_INFO', () => {
  test('a TypeError with its code', () => {
    const err = new errorCodes.FST_RS_INVALID_INFO('too large')
    expect(err.code).type.toBe<'FST_RS_INVALID_INFO'>()
    expect(err.statusCode).type.toBe<500>()
  })
})
