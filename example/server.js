// `npm start`: the demo on PORT (default 3000), with a private redis-server unless REDIS_URL is set.
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildApp } from './app.js'

async function freePort () {
  const server = createServer().listen(0, '127.0.0.1')
  await new Promise((resolve, reject) => server.once('listening', resolve).once('error', reject))
  const { port } = server.address()
  await new Promise((resolve) => server.close(resolve))
  return port
}

const NOT_FOUND = 'redis-server was not found on PATH. Install Redis (e.g. `apt-get install redis-server` or `brew install redis`),\n' +
  'or set REDIS_URL to a running server, e.g. REDIS_URL=redis://127.0.0.1:6379 npm start'

/** Starts redis-server on a free port in its own temp dir; it is killed (by PID) when this process exits. */
async function startRedis () {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'fastify-redis-sessions-demo-'))
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    { stdio: ['ignore', 'pipe', 'pipe'] })
  process.on('exit', () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
    rmSync(dir, { recursive: true, force: true })
  })
  let output = ''
  await new Promise((resolve, reject) => {
    const collect = (chunk) => {
      output = (output + chunk).slice(-4000)
      // redis-server's own word that it listens, in every Redis since 2.8 and in Valkey
      if (output.includes('Ready to accept connections')) resolve()
    }
    child.stdout.on('data', collect)
    child.stderr.on('data', collect)
    child.once('error', (err) => reject(new Error(err.code === 'ENOENT' ? NOT_FOUND : `cannot start redis-server: ${err.message}`)))
    child.once('exit', (code, signal) => reject(new Error(`redis-server exited (${signal ?? code}) during start-up:\n${output}`)))
  })
  return `redis://127.0.0.1:${port}`
}

// installed first, so a signal during start-up still runs the 'exit' handler that stops redis-server
let app = null
let closing = false
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    if (closing) process.exit(1) // a second Ctrl+C does not wait for the first to finish closing
    closing = true
    setTimeout(() => process.exit(1), 3000).unref()
    Promise.resolve(app?.close()).finally(() => process.exit(0))
  })
}

const { PORT = '3000', HOST: host = '127.0.0.1', LOG_LEVEL: level = 'info' } = process.env
const port = Number(PORT)
if (!/^\d{1,5}$/.test(PORT) || port > 65535) {
  console.error(`PORT must be a port number from 0 to 65535, not ${JSON.stringify(PORT)}: e.g. PORT=3001 npm start`)
  process.exit(1)
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

app = await buildApp({ secret, redisUrl, logger: { level } })
try {
  await app.listen({ port, host })
} catch (err) {
  // one line instead of a stack: the fix is the user's, not the code's
  console.error(err.code === 'EADDRINUSE'
    ? `Port ${port} is already in use on ${host}. Set PORT to a free one, e.g. PORT=${port < 65535 ? port + 1 : port - 1} npm start`
    : `Cannot listen on ${host}:${port}: ${err.message}. Check HOST and PORT, e.g. HOST=127.0.0.1 PORT=3001 npm start`)
  process.exit(1) // the 'exit' handler stops the private redis-server
}
