import type { Cluster, Redis } from 'ioredis'
import { NOW } from './lua.js'
import { defineScript } from './redis-calls.js'
import type { SessionStats } from './store.js'

/** The bucketed layout's keys of one bucket; the hash tag keeps both in one Cluster slot. */
export interface BucketKeys {
  /** a hash: session id → record */
  hash: string
  /** a sorted set: session id scored by when it expires (ms since epoch) */
  index: string
}

export function bucketKeys (prefix: string, bucket: number): BucketKeys {
  const hash = `${prefix}{${bucket}}`
  return { hash, index: hash + ':exp' }
}

/** The bucket of a session: FNV-1a of its id, so ids spread evenly and every process agrees. */
export function bucketOf (id: string, buckets: number): number {
  let hash = 0x811c9dc5
  for (let i = 0; i < id.length; i++) hash = Math.imul(hash ^ id.charCodeAt(i), 0x01000193)
  return (hash >>> 0) % buckets
}

// Removes at most ARGV[1] expired sessions of one bucket, so no call blocks Redis for long.
const SWEEP_SCRIPT = `
${NOW}
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, ARGV[1])
if #expired > 0 then
  redis.call('HDEL', KEYS[1], unpack(expired))
  redis.call('ZREM', KEYS[2], unpack(expired))
end
return #expired`

const SWEEP_COMMAND = 'fastifyRedisSessionsSweep'
const SWEEP_BATCH = 500
// buckets worked on at once: enough to keep the connection busy, few enough to leave room for requests
const CONCURRENCY = 16

type SweepClient = Record<typeof SWEEP_COMMAND, (hash: string, index: string, batch: number) => Promise<number>>

/** Runs `work` for every bucket, a few at a time. */
async function forEachBucket (buckets: number, work: (bucket: number) => Promise<void>): Promise<void> {
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < buckets) await work(next++)
  }
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, buckets) }, worker))
}

/** Removes the expired sessions of every bucket, in batches; resolves to how many. */
export async function sweepBuckets (client: Redis | Cluster, prefix: string, buckets: number): Promise<number> {
  defineScript(client, SWEEP_COMMAND, 2, SWEEP_SCRIPT)
  const sweep = (client as unknown as SweepClient)[SWEEP_COMMAND].bind(client)
  let removed = 0
  await forEachBucket(buckets, async (bucket) => {
    const { hash, index } = bucketKeys(prefix, bucket)
    let batch: number
    do {
      batch = await sweep(hash, index, SWEEP_BATCH)
      removed += batch
    } while (batch === SWEEP_BATCH)
  })
  return removed
}

/** Counts the sessions (expired ones not yet swept included) and the bytes of the buckets and their indexes. */
export async function bucketStats (client: Redis | Cluster, prefix: string, buckets: number): Promise<SessionStats> {
  const stats: SessionStats = { sessions: 0, bytes: 0 }
  await forEachBucket(buckets, async (bucket) => {
    const { hash, index } = bucketKeys(prefix, bucket)
    const [sessions, hashBytes, indexBytes] = await Promise.all([
      client.hlen(hash), client.memory('USAGE', hash), client.memory('USAGE', index)
    ])
    stats.sessions += sessions
    stats.bytes += (hashBytes ?? 0) + (indexBytes ?? 0)
  })
  return stats
}
