// @fastify/session with connect-redis, set up as their READMEs recommend (saveUninitialized: false,
// secure 'auto' for plain HTTP), over an ioredis client like every other variant.
import fastifyCookie from '@fastify/cookie'
import fastifySession from '@fastify/session'
import { RedisStore } from 'connect-redis'
import Fastify from 'fastify'
import { Redis } from 'ioredis'
import { COOKIE_NAME, SECRET } from './identity.js'
import { serve, sessionRoutes, settings } from './serve.js'

/** connect-redis 9 calls the node-redis API; these are the only calls it makes on a request path. */
function nodeRedisCalls (redis) {
  return {
    get: (key) => redis.get(key),
    set: (key, value, options) => options?.expiration === undefined
      ? redis.set(key, value)
      : redis.set(key, value, options.expiration.type, options.expiration.value),
    expire: (key, seconds) => redis.expire(key, seconds),
    del: (keys) => redis.del(keys)
  }
}

const app = Fastify()
await app.register(fastifyCookie)
await app.register(fastifySession, {
  secret: SECRET,
  cookieName: COOKIE_NAME,
  cookie: { secure: 'auto' },
  saveUninitialized: false,
  store: new RedisStore({ client: nodeRedisCalls(new Redis(settings.redisUrl)) })
})
sessionRoutes(app)
await serve(app)
