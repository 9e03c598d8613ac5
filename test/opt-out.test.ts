// Issue 11, point 1: `config: { session: false }` holds whatever the declaration order and
// encapsulation, including the most common style (register without await, routes right after).
import t from 'tap'
import Fastify, { type FastifyInstance, type FastifyPluginAsync } from 'fastify'
import redisSession from '../lib/index.js'
import { commandDelta } from './helpers/index.js'
import { privateRedis, SECRET, sessionCookie } from './helpers/app.js'

const { redis, admin } = await privateRedis(t)

const optedOut = async (request: { session: unknown }): Promise<{ session: unknown }> => ({ session: request.session })
const writer = async (request: { session: { set: (key: string, value: unknown) => unknown } }): Promise<object> => {
  request.session.set('n', 1)
  return {}
}

const styles: Record<string, (app: FastifyInstance) => Promise<void>> = {
  'register without await, routes declared right after': async (app) => {
    app.register(redisSession, { secret: SECRET, url: redis.url })
    app.get('/out', { config: { session: false } }, optedOut)
    app.get('/write', writer)
  },
  'routes declared before the plugin is registered': async (app) => {
    app.get('/out', { config: { session: false } }, optedOut)
    app.get('/write', writer)
    await app.register(redisSession, { secret: SECRET, url: redis.url })
  },
  'routes in a child plugin registered before the session plugin': async (app) => {
    const child: FastifyPluginAsync = async (child) => {
      child.route({ method: 'GET', url: '/out', config: { session: false }, handler: optedOut })
      child.get('/write', writer)
    }
    await app.register(child)
    await app.register(redisSession, { secret: SECRET, url: redis.url })
  },
  'routes in a child plugin after an awaited register': async (app) => {
    await app.register(redisSession, { secret: SECRET, url: redis.url })
    app.register(async (child) => {
      child.get('/out', { config: { session: false } }, optedOut)
      child.get('/write', writer)
    }, { prefix: '' })
  }
}

for (const [style, declare] of Object.entries(styles)) {
  t.test(style, async (t) => {
    const app = Fastify()
    t.teardown(async () => await app.close())
    await declare(app)
    await app.ready()
    const cookie = sessionCookie(await app.inject('/write')) as string
    t.ok(cookie, 'other routes have sessions')

    let response = await app.inject('/out')
    const delta = await commandDelta(admin, async () => {
      response = await app.inject({ url: '/out', headers: { cookie } })
    })
    t.same(delta, {}, 'no Redis command, though the request carries a valid cookie')
    t.same(response.json(), { session: null })
    t.equal(response.headers['set-cookie'], undefined, 'no cookie')
    t.same(await commandDelta(admin, async () => await app.inject({ url: '/write', headers: { cookie } })), { getex: 1, set: 1 },
      'a route with a session still loads and saves')
  })
}
