import Fastify from 'fastify'
import redisSession from '../dist/index.js'

// The app bench/faults.js puts under load, in a process of its own so its memory is its own.
// argv[2]: the plugin options as JSON. Answers { type: 'memory' } over IPC after a forced GC.

const options = JSON.parse(process.argv[2])
const app = Fastify({ logger: false })
await app.register(redisSession, { secret: 'faults-bench-secret-0123456789abcdefghijklmnop', ...options })

const view = (session) => ({ n: session.get('n', 0), owner: session.get('owner') ?? null, isNew: session.isNew })

app.get('/read', async (request) => view(request.session))
app.get('/write', async (request) => {
  const { session } = request
  if (!session.has('owner')) session.set('owner', request.query.owner)
  session.set('n', session.get('n', 0) + 1)
  return view(session)
})
// what was loaded: after regenerate() the session counts as new until saved; a new id, the data kept
app.get('/login', async (request) => {
  const loaded = view(request.session)
  await request.session.regenerate(request.session.keys())
  return loaded
})

await app.listen({ port: 0, host: '127.0.0.1' })
process.on('message', (message) => {
  if (message.type === 'memory') {
    globalThis.gc?.()
    const { rss, heapUsed } = process.memoryUsage()
    process.send({ type: 'memory', rss, heapUsed })
  } else if (message.type === 'close') {
    app.close().then(() => process.exit(0), () => process.exit(1))
  }
})
process.send({ type: 'ready', port: app.server.address().port })
