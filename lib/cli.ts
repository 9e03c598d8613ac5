import { readFile } from 'node:fs/promises'
import { parseArgs } from 'node:util'
import type { Cluster, Redis } from 'ioredis'
import type { RedisNode } from './options.js'
import { connect, firstConnection } from './connection.js'
import { bucketStats, sweepBuckets } from './stores/buckets.js'
import { keyPerSessionStats } from './stores/key-per-session.js'

export const USAGE = `Usage: fastify-redis-sessions <stats | sweep> (--url redis://… | --cluster host:port[,host:port…])
                              [--layout string | hash | bucketed] [--prefix sess:] [--buckets 65536]
       fastify-redis-sessions --version | --help

  stats   counts the sessions and the bytes Redis uses for them (MEMORY USAGE); with the
          string and hash layouts it walks the keys under the prefix with SCAN
  sweep   removes the expired sessions of the bucketed layout, a bounded batch per bucket
          at a time (Redis expires the string and hash layouts' keys itself)

  --url       redis://[user:password@]host:port/db, or rediss://… for TLS
  --cluster   seed nodes of a Redis Cluster, instead of --url
  --layout, --prefix, --buckets
              as the app registers the plugin: default string, sess:, and (bucketed only) 65536`

export interface Output {
  write: (text: string) => unknown
}

type Layout = 'string' | 'hash' | 'bucketed'

interface Command {
  name: 'sweep' | 'stats'
  url: string | undefined
  nodes: RedisNode[] | undefined
  layout: Layout
  prefix: string
  buckets: number
}

/**
 * `npx fastify-redis-sessions sweep|stats …`; resolves to the process exit code.
 * @example
 * process.exitCode = await main(process.argv.slice(2), process.stdout, process.stderr)
 */
export async function main (argv: string[], out: Output, err: Output): Promise<number> {
  let command: Command | 'help' | 'version'
  try {
    command = parse(argv)
  } catch (error) {
    err.write(`${(error as Error).message}\n\n${USAGE}\n`)
    return 2
  }
  if (command === 'help') {
    out.write(USAGE + '\n')
    return 0
  }
  if (command === 'version') {
    out.write(await version() + '\n')
    return 0
  }

  const { client } = connect({ url: command.url, cluster: command.nodes && { nodes: command.nodes }, connectTimeout: 5000, commandTimeout: 10_000 })
  const exitCode = await connected(client, command).then(async () => await perform(command, client)).then((report) => {
    out.write(report)
    return 0
  }, (error: Error) => {
    err.write(`${command.name} failed: ${error.message}\n`)
    return 1
  })
  client.disconnect()
  return exitCode
}

/**
 * Resolves once the client is ready. The plugin's connection waits out an outage, retrying
 * forever; a command run by hand says at once what it could not reach, and why.
 */
async function connected (client: Redis | Cluster, command: Command): Promise<void> {
  let failure: Error | undefined
  // the first error is the reason; the retries that follow would only repeat it
  client.on('error', (error: Error) => { failure ??= error })
  // rejects when Redis refuses us (credentials, ACL, TLS); resolves on ready, or at the first failure to connect
  await firstConnection(client)
  if (client.status === 'ready') return
  throw new Error(`cannot connect to ${address(command, client)}: ${unreachable(client, failure as Error & { code?: string })}`)
}

/** host:port of the Redis server, or the Cluster's seed nodes. */
function address ({ nodes }: Command, client: Redis | Cluster): string {
  if (nodes !== undefined) return nodes.map(({ host, port }) => `${host}:${port}`).join(',')
  const { host, port } = (client as Redis).options
  return `${host}:${port}`
}

function unreachable (client: Redis | Cluster, failure: Error & { code?: string }): string {
  // a Cluster reports only that no node gave it the slot map
  if (client.isCluster) return 'no node answered (is the cluster running?)'
  return failure.code === 'ECONNREFUSED' ? 'connection refused (is Redis running there?)' : failure.message
}

async function perform ({ name, layout, prefix, buckets }: Command, client: Redis | Cluster): Promise<string> {
  if (name === 'sweep') return `removed ${await sweepBuckets(client, prefix, buckets)} expired sessions\n`
  const { sessions, bytes } = layout === 'bucketed' ? await bucketStats(client, prefix, buckets) : await keyPerSessionStats(client, prefix, layout)
  return `sessions ${sessions}\nbytes ${bytes}\n`
}

/** The version in package.json, which sits one level above this module in lib/ and in dist/. */
async function version (): Promise<string> {
  const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
  return pkg.version
}

const LAYOUTS: readonly string[] = ['string', 'hash', 'bucketed'] satisfies Layout[]

/** The command line as a command, 'help' or 'version'; throws what is wrong with it. */
function parse (argv: string[]): Command | 'help' | 'version' {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      url: { type: 'string' },
      cluster: { type: 'string' },
      layout: { type: 'string', default: 'string' },
      prefix: { type: 'string', default: 'sess:' },
      buckets: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'v' }
    }
  })
  if (values.help === true) return 'help'
  if (values.version === true) return 'version'
  const [name, ...extra] = positionals
  if (name !== 'sweep' && name !== 'stats') throw new Error(name === undefined ? 'a command is required' : `unknown command "${name}"`)
  if (extra.length > 0) throw new Error(`unexpected argument "${extra[0]}"`)
  if ((values.url === undefined) === (values.cluster === undefined)) throw new Error('give either --url or --cluster')
  if (values.url !== undefined && !/^rediss?:\/\//i.test(values.url)) throw new Error('--url takes a redis:// or rediss:// URL, e.g. redis://localhost:6379/0')
  const layout = values.layout as Layout
  if (!LAYOUTS.includes(layout)) throw new Error(`--layout is string, hash or bucketed, not "${layout}"`)
  if (layout !== 'bucketed') {
    if (values.buckets !== undefined) throw new Error('--buckets only applies to --layout bucketed')
    // refused rather than a silent 0: a sweep meant for bucketed sessions must not pass for done
    if (name === 'sweep') throw new Error(`sweep is for --layout bucketed only: Redis expires the ${layout} layout's keys itself, nothing to sweep`)
  }
  const buckets = Number(values.buckets ?? 65536)
  if (!Number.isInteger(buckets) || buckets < 1) throw new Error('--buckets must be a whole number, 1 or more')
  const nodes = values.cluster?.split(',').map((node) => {
    const [, host, port] = /^(.+):(\d+)$/.exec(node) ?? []
    if (host === undefined) throw new Error(`--cluster takes host:port pairs, not "${node}"`)
    return { host, port: Number(port) }
  })
  return { name, url: values.url, nodes, layout, prefix: values.prefix, buckets }
}
