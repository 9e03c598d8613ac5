import { parseArgs } from 'node:util'
import type { Cluster, Redis } from 'ioredis'
import type { RedisNode } from './options.js'
import { connect, firstConnection } from './connection.js'
import { bucketStats, sweepBuckets } from './stores/buckets.js'

export const USAGE = `Usage: fastify-redis-sessions <sweep | stats> (--url redis://… | --cluster host:port[,host:port…]) [--prefix sess:] [--buckets 65536]

For sessions stored with layout: 'bucketed':
  sweep   removes expired sessions, a bounded batch per bucket at a time
  stats   counts the sessions and the bytes Redis uses for them (MEMORY USAGE)`

export interface Output {
  write: (text: string) => unknown
}

interface Command {
  name: 'sweep' | 'stats'
  url: string | undefined
  nodes: RedisNode[] | undefined
  prefix: string
  buckets: number
}

/**
 * `npx fastify-redis-sessions sweep|stats …`; resolves to the process exit code.
 * @example
 * process.exitCode = await main(process.argv.slice(2), process.stdout, process.stderr)
 */
export async function main (argv: string[], out: Output, err: Output): Promise<number> {
  let command: Command | 'help'
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

  const { client } = connect({ url: command.url, cluster: command.nodes && { nodes: command.nodes }, connectTimeout: 5000, commandTimeout: 10_000 })
  // the command that fails reports the reason; the connection's own error events would only repeat it
  client.on('error', () => {})
  // a Cluster refuses commands until it knows its slots: wait for it, or for the reason it cannot connect
  const exitCode = await firstConnection(client).then(async () => await perform(command, client)).then((report) => {
    out.write(report)
    return 0
  }, (error: Error) => {
    err.write(`${command.name} failed: ${error.message}\n`)
    return 1
  })
  client.disconnect()
  return exitCode
}

async function perform ({ name, prefix, buckets }: Command, client: Redis | Cluster): Promise<string> {
  if (name === 'sweep') return `removed ${await sweepBuckets(client, prefix, buckets)} expired sessions\n`
  const { sessions, bytes } = await bucketStats(client, prefix, buckets)
  return `sessions ${sessions}\nbytes ${bytes}\n`
}

/** The command line as a command, or 'help'; throws what is wrong with it. */
function parse (argv: string[]): Command | 'help' {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      url: { type: 'string' },
      cluster: { type: 'string' },
      prefix: { type: 'string', default: 'sess:' },
      buckets: { type: 'string', default: '65536' },
      help: { type: 'boolean', short: 'h' }
    }
  })
  if (values.help === true) return 'help'
  const [name, ...extra] = positionals
  if (name !== 'sweep' && name !== 'stats') throw new Error(name === undefined ? 'a command is required' : `unknown command "${name}"`)
  if (extra.length > 0) throw new Error(`unexpected argument "${extra[0]}"`)
  if ((values.url === undefined) === (values.cluster === undefined)) throw new Error('give either --url or --cluster')
  const buckets = Number(values.buckets)
  if (!Number.isInteger(buckets) || buckets < 1) throw new Error('--buckets must be a whole number, 1 or more')
  const nodes = values.cluster?.split(',').map((node) => {
    const [, host, port] = /^(.+):(\d+)$/.exec(node) ?? []
    if (host === undefined) throw new Error(`--cluster takes host:port pairs, not "${node}"`)
    return { host, port: Number(port) }
  })
  return { name, url: values.url, nodes, prefix: values.prefix, buckets }
}
