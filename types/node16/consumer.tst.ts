import Fastify from 'fastify'
import redisSession, { errorCodes, redisSession as named } from 'fastify-redis-sessions'
import { expect, test } from 'tstyche'

test('the shipped declarations compile under moduleResolution "node16"', () => {
  expect(named).type.toBe(redisSession)
  expect(Fastify().register).type.toBeCallableWith(redisSession, { secret: 'a-secret-that-is-at-least-32-characters' })
  expect(new errorCodes.FST_RS_STORE_UNAVAILABLE('down').statusCode).type.toBe<503>()
})
