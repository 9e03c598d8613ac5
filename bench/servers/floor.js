// Bare Fastify plus exactly the Redis work a session needs, straight through ioredis: one GET per
// read, GET + SET per write, one SET per new session. No session plugin can cost less.
import Fastify from 'fastify'
import { Redis } from 'ioredis'
import { COOKIE_NAME } from './identity.js'
import { serve, settings, USER } from './serve.js'

const TIMEOUT = 1200
const redis = new Redis(settings.redisUrl)
const app = Fastify()
let created = 0

// the raw Cookie header is the key: no parsing, no signature, nothing but the round trips
const keyOf = (cookieHeader) => 'floor:' + cookieHeader
const load = async (cookieHeader) => JSON.parse(await redis.get(keyOf(cookieHeader)) ?? '{}')

app.get('/untouched', async () => ({ ok: true }))
app.get('/read', async (request) => ({ views: (await load(request.headers.cookie)).views ?? 0 }))
app.get('/write', async (request, reply) => {
  let cookie = request.headers.cookie
  let data = {}
  if (cookie === undefined) {
    cookie = `${COOKIE_NAME}=${created++}`
    reply.header('set-cookie', cookie)
  } else {
    data = await load(cookie)
  }
  data.views = (data.views ?? 0) + 1
  data.user = USER
  await redis.set(keyOf(cookie), JSON.stringify(data), 'EX', TIMEOUT)
  return { views: data.views }
})
await serve(app)
