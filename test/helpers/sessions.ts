import type { Cluster, Redis } from 'ioredis'
import { bucketKeys, bucketOf } from '../../lib/stores/buckets.js'
import { idOf, sessionCookie, type TestApp } from './app.js'

/** Ids of `count` new sessions, each stored by a request to `url`, a route that writes the session. */
export async function newSessions (setup: TestApp, count: number, url = '/write'): Promise<string[]> {
  return await Promise.all(Array.from({ length: count }, async () => idOf(sessionCookie(await setup.request(url)) as string)))
}

/** Backdates a bucketed session's expiry in its bucket's index, as time passing would. */
export async function expireInBucket (client: Redis | Cluster, id: string, buckets: number, prefix = 'sess:'): Promise<void> {
  await client.zadd(bucketKeys(prefix, bucketOf(id, buckets)).index, Date.now() - 1000, id)
}
