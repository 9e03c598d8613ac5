// `npx fastify-redis-sessions`: stats and sweep of a deployment's sessions, from cron or by hand.
import t from 'tap'
import { readFile } from 'node:fs/promises'
import type { FastifyInstance } from 'fastify'
import type { Cluster, Redis } from 'ioredis'
import { main, USAGE } from '../lib/cli.js'
import { freePort, startCluster, startRedis } from './helpers/index.js'
import { buildApp, privateRedis } from './helpers/app.js'
import { expireInBucket, newSessions } from './helpers/sessions.js'

const LAYOUTS = ['string', 'hash', 'bucketed'] as const
const BUCKETS = 16

/** Every session is filed under one owner, so the owner index (a set under the prefix) exists too. */
function routes (app: FastifyInstance): void {
  app.get('/write', async (request) => {
    request.session.set('n', 1)
    request.session.setOwner('alice')
    return {}
  })
}

async function run (argv: string[]): Promise<{ code: number, out: string, err: string }> {
  let out = ''
  let err = ''
  const code = await main(argv, { write: (text) => { out += text } }, { write: (text) => { err += text } })
  return { code, out, err }
}

/** The numbers `stats` printed. */
function stats (out: string): { sessions: number, bytes: number } {
  const [, sessions, bytes] = /^sessions (\d+)\nbytes (\d+)\n$/.exec(out) ?? []
  return { sessions: Number(sessions), bytes: Number(bytes) }
}

/** What the app registers and the CLI must be told: layout, prefix and, for bucketed, buckets. */
function layoutArgs (layout: typeof LAYOUTS[number], prefix: string): string[] {
  return ['--layout', layout, '--prefix', prefix, ...(layout === 'bucketed' ? ['--buckets', String(BUCKETS)] : [])]
}

async function memoryOf (client: Redis | Cluster, keys: string[]): Promise<number> {
  const sizes = await Promise.all(keys.map(async (key) => await client.memory('USAGE', key) ?? 0))
  return sizes.reduce((sum, size) => sum + size, 0)
}

t.test('stats counts the sessions of every layout, and nothing else under the prefix', async (t) => {
  const shared = await privateRedis(t)
  for (const layout of LAYOUTS) {
    const prefix = `${layout}:`
    const setup = await buildApp(t, { layout, prefix, ...(layout === 'bucketed' ? { buckets: BUCKETS } : {}) }, routes, {}, shared)
    const ids = await newSessions(setup, 5)
    await shared.admin.set(prefix + 'not-a-session', 'x')
    const result = await run(['stats', '--url', shared.redis.url, ...layoutArgs(layout, prefix)])
    t.equal(result.code, 0, result.err)
    const { sessions, bytes } = stats(result.out)
    t.equal(sessions, 5, `${layout}: the sessions, not the owner index nor other keys`)
    if (layout === 'bucketed') t.ok(bytes > 0)
    else t.equal(bytes, await memoryOf(shared.admin, ids.map((id) => prefix + id)), `${layout}: MEMORY USAGE of the session keys`)
  }
  t.match((await run(['stats', '--url', shared.redis.url, '--prefix', 'string:'])).out, /^sessions 5\n/, 'the string layout is the default, as in the plugin')
})

t.test('a prefix with glob characters counts its own keys only', async (t) => {
  const shared = await privateRedis(t)
  for (const [prefix, count] of [['app*:', 2], ['app-:', 3]] as const) {
    await newSessions(await buildApp(t, { prefix }, routes, {}, shared), count)
  }
  t.match((await run(['stats', '--url', shared.redis.url, '--prefix', 'app*:'])).out, /^sessions 2\n/)
})

t.test('sweep removes the expired sessions of the bucketed layout; stats counts them until then', async (t) => {
  const setup = await buildApp(t, { layout: 'bucketed', buckets: BUCKETS }, routes)
  const ids = await newSessions(setup, 6)
  for (const id of ids.slice(0, 2)) await expireInBucket(setup.admin, id, BUCKETS)
  const target = ['--url', setup.redis.url, ...layoutArgs('bucketed', 'sess:')]

  t.equal(stats((await run(['stats', ...target])).out).sessions, 6, 'expired but not yet swept sessions count')
  t.same(await run(['sweep', ...target]), { code: 0, out: 'removed 2 expired sessions\n', err: '' })
  t.match((await run(['stats', ...target])).out, /^sessions 4\n/)
})

t.test('sweep refuses the string and hash layouts: Redis expires their keys itself', async (t) => {
  for (const layout of ['string', 'hash']) {
    const result = await run(['sweep', '--url', 'redis://127.0.0.1:6379', '--layout', layout])
    t.equal(result.code, 2)
    t.ok(result.err.startsWith(`sweep is for --layout bucketed only: Redis expires the ${layout} layout's keys itself, nothing to sweep\n`), result.err)
  }
  t.ok((await run(['sweep', '--url', 'redis://127.0.0.1:6379'])).err.startsWith('sweep is for --layout bucketed only'), 'also by default')
})

t.test('--version and -v print the package version', async (t) => {
  const { version } = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
  t.match(version, /^\d+\.\d+\.\d+/)
  for (const flag of ['--version', '-v']) t.same(await run([flag]), { code: 0, out: version + '\n', err: '' }, flag)
})

t.test('a bad command line is refused with what is wrong and the usage', async (t) => {
  t.same(await run(['--help']), { code: 0, out: USAGE + '\n', err: '' })
  const url = 'redis://127.0.0.1:6379'
  for (const [argv, problem] of [
    [[], 'a command is required'],
    [['purge', '--url', url], 'unknown command "purge"'],
    [['sweep', 'now', '--url', url], 'unexpected argument "now"'],
    [['sweep'], 'give either --url or --cluster'],
    [['stats', '--url', '127.0.0.1:6379'], '--url takes a redis:// or rediss:// URL, e.g. redis://localhost:6379/0'],
    [['stats', '--url', 'http://127.0.0.1:6379'], '--url takes a redis:// or rediss:// URL'],
    [['stats', '--url', url, '--layout', 'columnar'], '--layout is string, hash or bucketed, not "columnar"'],
    [['stats', '--url', url, '--buckets', '16'], '--buckets only applies to --layout bucketed'],
    [['sweep', '--url', url, '--layout', 'bucketed', '--buckets', 'many'], '--buckets must be a whole number'],
    [['stats', '--cluster', 'localhost'], '--cluster takes host:port pairs, not "localhost"'],
    [['sweep', '--verbose'], 'Unknown option \'--verbose\'']
  ] as const) {
    const result = await run([...argv])
    t.equal(result.code, 2, problem)
    t.ok(result.err.startsWith(problem), result.err.split('\n')[0])
    t.ok(result.err.endsWith(USAGE + '\n'))
  }
})

t.test('a Redis that cannot be reached is named, with the reason, at once', async (t) => {
  const port = await freePort()
  const started = Date.now()
  t.same(await run(['stats', '--url', `redis://127.0.0.1:${port}`]), {
    code: 1, out: '', err: `stats failed: cannot connect to 127.0.0.1:${port}: connection refused (is Redis running there?)\n`
  })
  t.ok(Date.now() - started < 5000, 'within connectTimeout, not after commandTimeout')

  const unknown = await run(['stats', '--url', 'redis://no-such-host.invalid:6379'])
  t.equal(unknown.code, 1)
  t.match(unknown.err, /^stats failed: cannot connect to no-such-host\.invalid:6379: getaddrinfo (ENOTFOUND|EAI_AGAIN) no-such-host\.invalid\n$/)

  const nodes = `127.0.0.1:${port},127.0.0.1:${await freePort()}`
  t.same(await run(['stats', '--cluster', nodes]), { code: 1, out: '', err: `stats failed: cannot connect to ${nodes}: no node answered (is the cluster running?)\n` })
})

t.test('a Redis that refuses the credentials says so', async (t) => {
  const locked = await startRedis({ password: 'secret' })
  t.teardown(async () => await locked.stop())
  const refused = await run(['stats', '--url', `redis://127.0.0.1:${locked.port}`])
  t.equal(refused.code, 1)
  t.match(refused.err, /^stats failed: Redis rejected the connection: NOAUTH/)
})

t.test('on Redis Cluster, stats and sweep reach every master, in every layout', async (t) => {
  const cluster = await startCluster()
  t.teardown(async () => await cluster.stop())
  const admin = cluster.servers[0].admin()
  t.teardown(() => admin.disconnect())
  const target = ['--cluster', cluster.nodes.map(({ host, port }) => `${host}:${port}`).join(',')]
  for (const layout of LAYOUTS) {
    const prefix = `${layout}:`
    const setup = await buildApp(t, { layout, prefix, url: undefined, cluster: { nodes: cluster.nodes }, ...(layout === 'bucketed' ? { buckets: BUCKETS } : {}) },
      routes, {}, { redis: cluster.servers[0], admin })
    const client = setup.app.sessionStore.client
    // spread over the three masters: a CLI that asked one of them would count about a third
    const ids = await newSessions(setup, 12)
    const { sessions, bytes } = stats((await run(['stats', ...target, ...layoutArgs(layout, prefix)])).out)
    t.equal(sessions, 12, layout)
    if (layout === 'bucketed') t.ok(bytes > 0)
    else t.equal(bytes, await memoryOf(client, ids.map((id) => prefix + id)), layout)

    if (layout !== 'bucketed') continue
    for (const id of ids.slice(0, 2)) await expireInBucket(client, id, BUCKETS, prefix)
    t.same(await run(['sweep', ...target, ...layoutArgs(layout, prefix)]), { code: 0, out: 'removed 2 expired sessions\n', err: '' })
    t.match((await run(['stats', ...target, ...layoutArgs(layout, prefix)])).out, /^sessions 10\n/)
  }
})
