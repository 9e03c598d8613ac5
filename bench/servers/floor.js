// Bare Fastify plus exactly the Redis work a session needs, straight through ioredis: one GET per
// read, GET + SET per write, one SET per new session. No session plugin can cost less.
import Fastify from 'fastify'
import { Redis } from 'ioredis'
import { floorRoutes, FLOOR_TIMEOUT, serve, settings } from './serve.js'

const redis = new Redis(settings.redisUrl)
const app = Fastify()
floorRoutes(app, {
  load: async (key) => await redis.get(key),
  save: async (key, json) => await redis.set(key, json, 'EX', FLOOR_TIMEOUT)
})
await serve(app)
