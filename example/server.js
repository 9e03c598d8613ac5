// `npm start`: the demo on PORT (default 3000), with a private redis-server unless REDIS_URL is set.
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { connect, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { buildApp } from './app.js'

async function freePort () {
  const server = createServer().listen(0, '127.0.0.1')
  await new Promise((resolve, reject) => server.once('listening', resolve).once('error', reject))
  const { port } = server.address()
  await new Promise((resolve) => server.close(resolve))
  return port
}

const canConnect = (port) => new Promise((resolve) => {
  const socket = connect(port, '127.0.0.1', () => { socket.destroy(); resolve(true) })
  socket.once('error', () => resolve(false))
})

/** Starts redis-server on a free port in its own temp dir; it is killed (by PID) when this process exits. */
async function startRedis () {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'fastify-redis-sessions-demo-'))
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (chunk) => { output = (output + chunk).slice(-4000) })
  child.stderr.on('data', (chunk) => { output = (output + chunk).slice(-4000) })
  const stop = () => {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGTERM')
    rmSync(dir, { recursive: true, force: true })
  }
  process.on('exit', stop)

  const failed = new Promise((resolve) => {
    child.once('error', (err) => resolve(err.code === 'ENOENT'
      ? 'redis-server was not found on PATH. Install Redis (e.g. `apt-get install redis-server` or `brew install redis`),\n' +
        'or set REDIS_URL to a running server, e.g. REDIS_URL=redis://127.0.0.1:6379 npm start'
      : `cannot start redis-server: ${err.message}`))
    child.once('exit', (code, signal) => resolve(`redis-server exited (${signal ?? code}) during start-up:\n${output}`))
  })
  const deadline = Date.now() + 10_000
  for (;;) {
    const problem = await Promise.race([failed, sleep(50, null)])
    if (problem !== null) throw new Error(problem)
    if (await canConnect(port)) break
    if (Date.now() > deadline) throw new Error(`redis-server did not accept connections on port ${port} within 10 s:\n${output}`)
  }
  return `redis://127.0.0.1:${port}`
}

// installed first, so a signal during start-up still runs the 'exit' handler that stops redis-server
let app = null
let closing = false
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    if (closing) process.exit(1)
    closing = true
    setTimeout(() => process.exit(1), 3000).unref()
    Promise.resolve(app?.close()).finally(() => process.exit(0))
  })
}

let redisUrl = process.env.REDIS_URL
if (redisUrl === undefined || redisUrl === '') {
  try {
    redisUrl = await startRedis()
  } catch (err) {
    console.error(err.message)
    process.exit(1)
  }
  console.log(`Started a private redis-server at ${redisUrl}; it stops with this process.`)
}

let secret = process.env.SESSION_SECRET
if (secret === undefined || secret === '') {
  secret = randomBytes(32).toString('base64url')
  console.warn('SESSION_SECRET is not set: using a random secret, so sessions will not survive a restart.')
}

app = await buildApp({ secret, redisUrl, logger: { level: process.env.LOG_LEVEL ?? 'info' } })
await app.listen({ port: Number(process.env.PORT ?? 3000), host: process.env.HOST ?? '127.0.0.1' })
