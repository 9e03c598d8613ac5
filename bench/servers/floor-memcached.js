// Bare Fastify plus exactly the Memcached work a session needs, straight through memjs: one GAT
// (get-and-touch) per read, GAT + SET per write, one SET per new session. No session plugin can cost less.
import Fastify from 'fastify'
import memjs from 'memjs'
import { COOKIE_NAME } from './identity.js'
import { serve, settings, USER } from './serve.js'

const TIMEOUT = 1200
const client = memjs.Client.create(settings.memcachedServers, { logger: { log: () => {} } })
const app = Fastify()
let created = 0

// the raw Cookie header is the key: no parsing, no signature, nothing but the round trips
const keyOf = (cookieHeader) => 'floor:' + cookieHeader
const load = async (cookieHeader) => {
  const key = keyOf(cookieHeader)
  client.incrSeq()
  const seq = client.seq
  const request = memjs.Utils.makeRequestBuffer(0x1d, key, memjs.Utils.makeExpiration(TIMEOUT), '', seq)
  const value = await new Promise((resolve, reject) => client.perform(key, request, seq, (err, response) => err ? reject(err) : resolve(response.header.status === 0 ? response.val : null)))
  return JSON.parse(value ?? '{}')
}

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
  await client.set(keyOf(cookie), JSON.stringify(data), { expires: TIMEOUT })
  return { views: data.views }
})
app.addHook('onClose', async () => client.close())
await serve(app)
