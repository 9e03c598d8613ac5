import type { FastifyInstance } from 'fastify'
import { checkMemcached, connectMemcached, type MemcachedOptions } from '../memcached-connection.js'
import type { ResolvedOptions } from '../options.js'
import { Codec } from '../codec.js'
import { MemcachedStore } from '../stores/memcached-store.js'
import type { Engine, Watch } from './index.js'

// memjs reports no connection events to follow: every call is sent, and fails within commandTimeout
const ALWAYS_SEND: Watch = {
  outage: () => undefined,
  guard: async (call) => await call()
}

/** Sessions in Memcached (`memcached`): the memjs client, checked once, and its store. */
export async function openMemcached (fastify: FastifyInstance, opts: ResolvedOptions): Promise<Engine> {
  // openEngine comes here only with `memcached`
  const { memcached, connectTimeout, commandTimeout } = opts.connection
  const { client, owned } = connectMemcached(memcached as MemcachedOptions, { connectTimeout, commandTimeout })
  if (owned) fastify.addHook('onClose', async () => client.close())
  await checkMemcached(client, commandTimeout).catch((err: unknown) => {
    if (owned) client.close()
    throw err
  })
  const { encode, decode, maxSize, compress, prefix, timeout, absoluteTimeout, redisTtl } = opts
  const store = new MemcachedStore({ client, codec: new Codec({ encode, decode, maxSize, compress }), prefix, timeout, absoluteTimeout, redisTtl, commandTimeout })
  return { store, watch: ALWAYS_SEND, takeover: undefined, cache: undefined }
}
