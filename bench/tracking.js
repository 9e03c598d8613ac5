// Default CLIENT TRACKING or BCAST PREFIX for the local cache (`cache` option)? Measures, on a
// private redis-server, for INSTANCES app instances that each read SESSIONS sessions:
//  - what the server keeps for tracking (INFO tracking_total_keys / _items, used_memory increase);
//  - invalidation messages per write (each instance's invalidation connection counts them);
//  - whether the key is still tracked for its reader after that reader's own write (NOLOOP) or
//    after a GETEX slide: in default mode a modified key leaves the tracking table, for every client.
//   node bench/tracking.js [--sessions 10000] [--instances 3]
import { parseArgs } from 'node:util'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import { startRedis } from './redis.js'

const { values } = parseArgs({ options: { sessions: { type: 'string', default: '10000' }, instances: { type: 'string', default: '3' } } })
const SESSIONS = Number(values.sessions)
const INSTANCES = Number(values.instances)
const PREFIX = 'sess:'

const server = await startRedis()
const admin = new Redis(server.url)

async function info (name) {
  const text = await admin.info()
  return Number(new RegExp(`^${name}:(\\d+)`, 'm').exec(text)[1])
}

/** An app instance: a reading connection with tracking on, redirected to a subscribed RESP2 one. */
async function instance (mode) {
  const reader = new Redis(server.url)
  const invalidations = new Redis(server.url, { protocol: 2 })
  const id = await invalidations.client('ID')
  const received = { messages: 0, keys: 0 }
  invalidations.on('messageBuffer', (channel, keys) => {
    received.messages++
    received.keys += keys === null ? 0 : keys.length
  })
  await invalidations.subscribe('__redis__:invalidate')
  const bcast = mode === 'bcast' ? ['BCAST', 'PREFIX', PREFIX] : []
  await reader.call('CLIENT', 'TRACKING', 'ON', 'REDIRECT', String(id), ...bcast, 'NOLOOP')
  return { reader, invalidations, received, close: () => { reader.disconnect(); invalidations.disconnect() } }
}

async function measure (mode) {
  await admin.flushall()
  const memoryBefore = await info('used_memory')
  const instances = []
  for (let i = 0; i < INSTANCES; i++) instances.push(await instance(mode))
  const value = 'x'.repeat(200)
  const keys = Array.from({ length: SESSIONS }, (_, i) => PREFIX + String(i).padStart(43, '0'))
  for (let i = 0; i < keys.length; i += 1000) await admin.mset(...keys.slice(i, i + 1000).flatMap((key) => [key, value]))
  // every instance reads every session with GET (GETEX is a write command: it tracks nothing)
  for (const { reader } of instances) {
    for (let i = 0; i < keys.length; i += 1000) await Promise.all(keys.slice(i, i + 1000).map((key) => reader.get(key)))
  }
  const tracked = { keys: await info('tracking_total_keys'), items: await info('tracking_total_items'), prefixes: await info('tracking_total_prefixes') }
  const memory = await info('used_memory') - memoryBefore

  // GETEX by a tracking reader: does it enter the tracking table?
  await admin.set(PREFIX + 'getex', value)
  const beforeGetex = await info('tracking_total_keys')
  await instances[0].reader.getex(PREFIX + 'getex', 'EX', 100)
  const getexTracks = await info('tracking_total_keys') > beforeGetex

  // instance 0 writes one of its sessions (NOLOOP): messages per write; is it still tracked for instance 0?
  for (const { received } of instances) Object.assign(received, { messages: 0, keys: 0 })
  await instances[0].reader.set(keys[0], 'y', 'XX')
  await instances[0].reader.ping()
  await sleep(100)
  const afterOwnWrite = { messages: instances.slice(1).reduce((sum, { received }) => sum + received.messages, 0), ownMessages: instances[0].received.messages }
  // a foreign write afterwards: does instance 0 hear of it?
  instances[0].received.messages = 0
  await admin.set(keys[0], 'z')
  await sleep(100)
  const heardAfterOwnWrite = instances[0].received.messages > 0
  // 100 writes in one burst by an outsider: messages each instance gets (BCAST batches per event loop)
  for (const { received } of instances) Object.assign(received, { messages: 0, keys: 0 })
  await Promise.all(keys.slice(1, 101).map((key) => admin.set(key, 'w')))
  await sleep(100)
  const burst = instances.map(({ received }) => ({ ...received }))
  for (const { close } of instances) close()
  return { mode, tracked, memory, getexTracks, afterOwnWrite, heardAfterOwnWrite, burst }
}

const results = [await measure('default'), await measure('bcast')]
console.log(`Redis ${await server.version()}, ${INSTANCES} instances, each reads ${SESSIONS} sessions\n`)
console.log('| mode | tracking_total_keys | tracking_total_items | used_memory increase (incl. data) | GETEX tracks | messages to others per own write | own write still tracked | messages per instance for 100 outside writes |')
console.log('|---|---|---|---|---|---|---|---|')
for (const r of results) {
  console.log(`| ${r.mode} | ${r.tracked.keys} | ${r.tracked.items} | ${r.memory} | ${r.getexTracks} | ${r.afterOwnWrite.messages} (own: ${r.afterOwnWrite.ownMessages}) | ${r.heardAfterOwnWrite} | ${r.burst.map((b) => `${b.messages} msgs/${b.keys} keys`).join(', ')} |`)
}
admin.disconnect()
await server.stop()
