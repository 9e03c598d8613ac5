// This plugin in the layout the parent asks for (with the local cache, or on Memcached, when asked), registered as its README shows.
import Fastify from 'fastify'
import redisSession from 'fastify-redis-sessions'
import { SECRET } from './identity.js'
import { serve, sessionRoutes, settings } from './serve.js'

const app = Fastify()
await app.register(redisSession, settings.memcachedServers === undefined
  ? { secret: SECRET, url: settings.redisUrl, layout: settings.layout, cache: settings.cache }
  : { secret: SECRET, memcached: { servers: settings.memcachedServers } })
sessionRoutes(app)
await serve(app)
