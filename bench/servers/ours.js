// This plugin in the layout the parent asks for (with the local cache, on Memcached, or watched by a
// subscriber on every tracing channel, when asked), registered as its README shows.
import { tracingChannel } from 'node:diagnostics_channel'
import Fastify from 'fastify'
import redisSession from 'fastify-redis-sessions'
import { SECRET } from './identity.js'
import { serve, sessionRoutes, settings } from './serve.js'

if (settings.traced) {
  // a cheap subscriber, as an APM's would be before it does any work of its own: it counts
  let published = 0
  const count = () => { published++ }
  for (const operation of ['load', 'save', 'destroy']) {
    tracingChannel(`fastify-redis-sessions:${operation}`).subscribe({ start: count, end: count, asyncStart: count, asyncEnd: count, error: count })
  }
  process.on('exit', () => { if (published === 0) console.error('ours (string, traced): nothing was published') })
}

const app = Fastify()
await app.register(redisSession, settings.memcachedServers === undefined
  ? { secret: SECRET, url: settings.redisUrl, layout: settings.layout, cache: settings.cache }
  : { secret: SECRET, memcached: { servers: settings.memcachedServers } })
sessionRoutes(app)
await serve(app)
