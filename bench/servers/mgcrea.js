// @mgcrea/fastify-session with @mgcrea/fastify-session-redis-store, as its README's Redis example
// (HMAC signing, cookie maxAge = store ttl); saveUninitialized: false so untouched requests store nothing.
import fastifyCookie from '@fastify/cookie'
import fastifySession from '@mgcrea/fastify-session'
import { RedisStore } from '@mgcrea/fastify-session-redis-store'
import Fastify from 'fastify'
import { Redis } from 'ioredis'
import { COOKIE_NAME, SECRET } from './identity.js'
import { serve, sessionRoutes, settings } from './serve.js'

const SESSION_TTL = 86400

const app = Fastify()
await app.register(fastifyCookie)
await app.register(fastifySession, {
  secret: SECRET,
  cookieName: COOKIE_NAME,
  cookie: { maxAge: SESSION_TTL },
  saveUninitialized: false,
  store: new RedisStore({ client: new Redis(settings.redisUrl), ttl: SESSION_TTL })
})
sessionRoutes(app)
await serve(app)
