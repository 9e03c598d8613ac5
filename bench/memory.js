// Redis bytes per session for each layout, with and without compression: stores N sessions of a
// realistic small payload through the built stores on a private redis-server per variant and
// prints INFO memory's used_memory increase divided by N as a markdown table.
//   npm run bench:memory [-- --sessions 100000]
import { randomBytes } from 'node:crypto'
import { parseArgs } from 'node:util'
import { Redis } from 'ioredis'
import { resolveOptions } from '../dist/options.js'
import { createStores } from '../dist/stores/index.js'
import { startRedis } from './redis.js'
import { shopSession } from './shop-session.js'

const { values } = parseArgs({ options: { sessions: { type: 'string', default: '100000' } } })
const SESSIONS = Number(values.sessions)
const IN_FLIGHT = 1000

// Redis keeps a hash (and a sorted set) compact as a listpack only up to these sizes; a bucket of
// ~100 sessions of ~250 bytes needs both raised from their defaults (128 entries, 64 bytes).
const LISTPACK = {
  'hash-max-listpack-entries': '512',
  'hash-max-listpack-value': '1024',
  'zset-max-listpack-entries': '512'
}

const VARIANTS = [
  { name: '`string`', options: { layout: 'string' } },
  { name: '`hash`', options: { layout: 'hash' } },
  { name: '`hash`, listpack tuned', options: { layout: 'hash' }, config: LISTPACK },
  { name: '`bucketed`, 65536 buckets', options: { layout: 'bucketed' } },
  { name: '`bucketed`, 1024 buckets', options: { layout: 'bucketed', buckets: 1024 } },
  { name: '`bucketed`, 1024 buckets, listpack tuned', options: { layout: 'bucketed', buckets: 1024 }, config: LISTPACK }
]
// threshold 0: this payload (~280 bytes) stays below the default of 400, which is the point of the default
const COMPRESSIONS = [{ name: 'plain', compress: false }, { name: 'deflate', compress: { threshold: 0 } }]

async function usedMemory (client) {
  return Number(/^used_memory:(\d+)/m.exec(await client.info('memory'))[1])
}

async function bytesPerSession (variant, compression) {
  const redis = await startRedis()
  const client = new Redis(redis.url)
  try {
    for (const [name, value] of Object.entries(variant.config ?? {})) await client.config('SET', name, value)
    const options = resolveOptions({ secret: 'x'.repeat(32), client, compress: compression.compress, ...variant.options })
    const { store } = createStores(options, client, (err) => console.error(err))
    // a first save loads the scripts, so their memory is not counted
    await store.save({ id: 'warm-up', session: { data: {}, createdAt: Date.now() }, isNew: true })
    const before = await usedMemory(client)
    for (let start = 0; start < SESSIONS; start += IN_FLIGHT) {
      const saves = []
      for (let i = start; i < Math.min(start + IN_FLIGHT, SESSIONS); i++) {
        const session = { data: shopSession(i), createdAt: Date.now(), timeout: undefined }
        saves.push(store.save({ id: randomBytes(32).toString('base64url'), session, isNew: true }))
      }
      await Promise.all(saves)
    }
    return Math.round((await usedMemory(client) - before) / SESSIONS)
  } finally {
    client.disconnect()
    await redis.stop()
  }
}

const sample = JSON.stringify(shopSession(0))
console.log(`${SESSIONS} sessions of a ${Buffer.byteLength(sample)}-byte JSON payload, Redis bytes per session (used_memory)\n`)
console.log(`| layout | ${COMPRESSIONS.map((c) => c.name).join(' | ')} |`)
console.log(`|---|${COMPRESSIONS.map(() => '---:').join('|')}|`)
for (const variant of VARIANTS) {
  const cells = []
  for (const compression of COMPRESSIONS) cells.push(await bytesPerSession(variant, compression))
  console.log(`| ${variant.name} | ${cells.join(' | ')} |`)
}
console.log(`\nlistpack tuned: ${Object.entries(LISTPACK).map(([name, value]) => `${name} ${value}`).join(', ')}`)
