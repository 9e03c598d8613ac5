// Heap bytes per session in the local cache (`cache`): saves N sessions through the built stores
// with the cache on (each own save fills it) and prints the heap increase after gc divided by N,
// for a small session and a 4 KB one; then N with maxEntries N/2, to show the bound holds.
//   npm run build && node --expose-gc bench/cache-memory.js [--sessions 20000]
import { randomBytes } from 'node:crypto'
import { parseArgs } from 'node:util'
import { Redis } from 'ioredis'
import { resolveOptions } from '../dist/options.js'
import { createStores } from '../dist/stores/index.js'
import { startRedis } from './redis.js'
import { shopSession } from './shop-session.js'

if (typeof globalThis.gc !== 'function') throw new Error('run with node --expose-gc')
const { values } = parseArgs({ options: { sessions: { type: 'string', default: '20000' } } })
const SESSIONS = Number(values.sessions)
const IN_FLIGHT = 500

function large (i) {
  const data = shopSession(i)
  data.notes = randomBytes(4096).toString('base64url').slice(0, 4096 - JSON.stringify(data).length - 12)
  return data
}

function heap () {
  globalThis.gc()
  globalThis.gc()
  return process.memoryUsage().heapUsed
}

async function bytesPerSession (redis, payload, maxEntries) {
  const client = new Redis(redis.url)
  try {
    const { store, cache } = createStores(resolveOptions({ secret: 'x'.repeat(32), client, cache: { maxEntries } }), client, (err) => console.error(err))
    // what the tracking connection does once Redis confirms tracking
    cache.enable()
    const before = heap()
    for (let start = 0; start < SESSIONS; start += IN_FLIGHT) {
      const saves = []
      for (let i = start; i < Math.min(start + IN_FLIGHT, SESSIONS); i++) {
        const session = { data: payload(i), createdAt: Date.now(), timeout: undefined, owner: undefined }
        saves.push(store.save({ id: randomBytes(32).toString('base64url'), session, isNew: true }))
      }
      await Promise.all(saves)
    }
    const bytes = heap() - before
    // kept alive until measured
    cache.disable()
    return Math.round(bytes / SESSIONS)
  } finally {
    client.disconnect()
  }
}

const redis = await startRedis()
try {
  console.log(`${SESSIONS} sessions saved with the cache on; heap bytes per session (heapUsed after gc / sessions)\n`)
  console.log('| session | JSON bytes | maxEntries ≥ sessions | maxEntries = sessions / 2 |')
  console.log('|---|---:|---:|---:|')
  for (const [name, payload] of [['small', shopSession], ['4 KB', large]]) {
    const all = await bytesPerSession(redis, payload, SESSIONS)
    await redis.flush()
    const half = await bytesPerSession(redis, payload, SESSIONS / 2)
    await redis.flush()
    console.log(`| ${name} | ${Buffer.byteLength(JSON.stringify(payload(0)))} | ${all} | ${half} |`)
  }
} finally {
  await redis.stop()
}
