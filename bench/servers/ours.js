// This plugin in the layout the parent asks for, registered as its README shows.
import Fastify from 'fastify'
import redisSession from 'fastify-redis-sessions'
import { SECRET } from './identity.js'
import { serve, sessionRoutes, settings } from './serve.js'

const app = Fastify()
await app.register(redisSession, { secret: SECRET, url: settings.redisUrl, layout: settings.layout })
sessionRoutes(app)
await serve(app)
