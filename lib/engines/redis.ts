import type { FastifyInstance } from 'fastify'
import type { Redis } from 'ioredis'
import { checkAccess, connect, firstConnection } from '../connection.js'
import { SessionTakeover } from '../migrate.js'
import type { ResolvedOptions } from '../options.js'
import { OutageWatch } from '../outage.js'
import { createStores, scheduleSweeps } from '../stores/index.js'
import { Tracking } from '../stores/tracking.js'
import type { Visibility } from '../visibility.js'
import type { Engine } from './index.js'

/** Sessions in Redis: the ioredis client, its outage watch, the layout's store, the cache's tracking, sweeps. */
export async function openRedis (fastify: FastifyInstance, opts: ResolvedOptions, visibility: Visibility): Promise<Engine> {
  const { client, owned } = connect(opts.connection)
  const watch = new OutageWatch(client, fastify.log)
  // a register that fails leaves no connection of ours behind
  const abandon = (err: unknown): never => {
    if (owned) client.disconnect()
    throw err
  }
  if (owned) {
    fastify.addHook('onClose', async () => {
      if (client.status !== 'ready') return client.disconnect()
      // resolved on 'end' only: events.once would reject on the errors a closing connection may emit
      const ended = new Promise((resolve) => client.once('end', resolve))
      await client.quit()
      await ended
    })
    await firstConnection(client).catch(abandon)
  }
  await checkAccess(client, opts).catch(abandon)

  const { store, cache } = createStores(opts, client, (err) => fastify.log.warn({ err }, 'sliding the expiry of a cached session failed'), visibility)
  if (cache !== undefined) {
    const tracking = new Tracking(client as Redis, cache, opts.prefix, fastify.log, opts.connection.commandTimeout)
    fastify.addHook('onClose', async () => await tracking.close())
    await tracking.start().catch(abandon)
  }
  if (opts.sweepInterval !== undefined) {
    const stopSweeps = scheduleSweeps(store, opts.sweepInterval, (err) => fastify.log.warn({ err }, 'session sweep failed'))
    fastify.addHook('preClose', stopSweeps)
  }
  const guard = watch.guard.bind(watch)
  const takeover = opts.migrateFrom === undefined ? undefined : new SessionTakeover(opts.migrateFrom, client, guard)
  return { store, watch, takeover, cache }
}
