// Issue 15: the connections saves with `replicas` wait on. Each is lent to one save at a time;
// when all are busy a save waits for one, never longer than commandTimeout.
import t from 'tap'
import { Redis } from 'ioredis'
import { setTimeout as sleep } from 'node:timers/promises'
import { ConnectionPool } from '../lib/stores/connection-pool.js'
import { freePort } from './helpers/free-port.js'
import { privateRedis } from './helpers/app.js'

t.test('one save per connection; the next waits for one to be given back', async (t) => {
  const { admin } = await privateRedis(t)
  const pool = new ConnectionPool(admin, (connection) => connection, { size: 2, timeout: 500 })
  t.teardown(() => pool.close())
  const ids = async (connection: Redis): Promise<number> => await connection.client('ID')
  let release = (): void => {}
  const held = new Promise<void>((resolve) => { release = resolve })
  const first = pool.use(async (connection) => { const id = await ids(connection as Redis); await held; return id })
  const second = pool.use(async (connection) => { const id = await ids(connection as Redis); await held; return id })
  const third = pool.use(async (connection) => await ids(connection as Redis))
  await sleep(100)
  t.equal(pool.values.length, 2, 'no more connections than its size')
  release()
  const [a, b, c] = await Promise.all([first, second, third])
  t.not(a, b, 'overlapping saves are on connections of their own')
  t.ok(c === a || c === b, 'the third had one given back')
  t.not(a, await ids(admin), 'none of them is the source connection')

  const stuck = pool.use(async () => await sleep(800))
  const other = pool.use(async () => await sleep(800))
  const started = performance.now()
  await t.rejects(pool.use(async () => 'never'), { code: 'FST_RS_STORE_UNAVAILABLE' }, 'all busy for longer than its timeout: a 503')
  t.ok(performance.now() - started < 700, 'after its timeout')
  await Promise.all([stuck, other])
  t.equal(await pool.use(async () => 'free again'), 'free again', 'the one that gave up is out of the queue')
})

t.test('a connection that is not ready within the timeout fails the save with a 503', async (t) => {
  const source = new Redis({ port: await freePort(), retryStrategy: () => 100 })
  source.on('error', () => {})
  t.teardown(() => source.disconnect())
  const pool = new ConnectionPool(source, (connection) => connection, { size: 1, timeout: 200 })
  t.teardown(() => pool.close())
  await t.rejects(pool.use(async () => 'never'), { code: 'FST_RS_STORE_UNAVAILABLE' })
})
