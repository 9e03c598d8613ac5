// This plugin in the layout the parent asks for (and with the local cache, when asked), registered as its README shows.
import Fastify from 'fastify'
import redisSession from 'fastify-redis-sessions'
import { SECRET } from './identity.js'
import { serve, sessionRoutes, settings } from './serve.js'

const app = Fastify()
await app.register(redisSession, { secret: SECRET, url: settings.redisUrl, layout: settings.layout, cache: settings.cache })
sessionRoutes(app)
await serve(app)
