// Bare Fastify plus exactly the Memcached work a session needs, straight through memjs: one GAT
// (get-and-touch) per read, GAT + SET per write, one SET per new session. No session plugin can cost less.
import Fastify from 'fastify'
import memjs from 'memjs'
import { floorRoutes, FLOOR_TIMEOUT, serve, settings } from './serve.js'

const client = memjs.Client.create(settings.memcachedServers, { logger: { log: () => {} } })
const app = Fastify()
floorRoutes(app, {
  // memjs has no method for GAT: its own request framing, with GAT's opcode
  load: async (key) => await new Promise((resolve, reject) => {
    client.incrSeq()
    const seq = client.seq
    const request = memjs.Utils.makeRequestBuffer(0x1d, key, memjs.Utils.makeExpiration(FLOOR_TIMEOUT), '', seq)
    client.perform(key, request, seq, (err, response) => err ? reject(err) : resolve(response.header.status === 0 ? response.val : null))
  }),
  save: async (key, json) => await client.set(key, json, { expires: FLOOR_TIMEOUT })
})
app.addHook('onClose', async () => client.close())
await serve(app)
