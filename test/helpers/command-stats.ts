import type { Redis } from 'ioredis'

/**
 * Call counts per command from `INFO commandstats`, keyed like `get` or `client|setname`.
 * Commands run inside MULTI or Lua scripts are counted too; rejected calls are not.
 */
export async function commandStats (admin: Redis): Promise<Map<string, number>> {
  const stats = new Map<string, number>()
  for (const line of (await admin.info('commandstats')).split('\n')) {
    const match = /^cmdstat_([^:]+):calls=(\d+)/.exec(line.trim())
    if (match) stats.set(match[1], Number(match[2]))
  }
  return stats
}

/**
 * The commands `fn` made the server run: per-command increases of the call counts, without
 * `info` (our own probe) and without commands that did not run. Use a private server, since
 * every client's commands count.
 * @example
 * const delta = await commandDelta(admin, () => app.inject('/'))
 * t.same(delta, { get: 1 })
 */
export async function commandDelta (admin: Redis, fn: () => Promise<unknown>): Promise<Record<string, number>> {
  const before = await commandStats(admin)
  await fn()
  const after = await commandStats(admin)
  const delta: Record<string, number> = {}
  for (const [command, calls] of after) {
    const increase = calls - (before.get(command) ?? 0)
    if (command !== 'info' && increase > 0) delta[command] = increase
  }
  return delta
}
