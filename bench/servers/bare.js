// Fastify with no session at all: the ceiling every variant is compared with.
import Fastify from 'fastify'
import { serve } from './serve.js'

const app = Fastify()
app.get('/untouched', async () => ({ ok: true }))
app.get('/read', async () => ({ views: 0 }))
app.get('/write', async () => ({ views: 1 }))
await serve(app)
