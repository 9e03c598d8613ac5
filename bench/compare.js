import { setTimeout as sleep } from 'node:timers/promises'
import { load } from './load.js'
import { countsBetween } from './redis.js'
import { startServer } from './server.js'
import { allVariants, ROUTES } from './variants.js'

const SETTLE_MS = 100

/**
 * Runs every route against every variant, `plan.reps` times, interleaved (A B C … B C A …) so
 * drift on a noisy machine spreads over all variants alike. Before the first repetition each
 * variant and route is warmed up and traced once (round trips come from that trace). Variants
 * marked `memcached` keep their sessions in `memcached` (bench/memcached.js), counted there.
 */
export async function compare (redis, memcached, plan, log) {
  const variants = allVariants()
  const servers = []
  const storeOf = (server) => server.variant.memcached ? memcached : redis
  try {
    for (const variant of variants) {
      const settings = variant.memcached ? { ...variant.settings, memcachedServers: memcached.address } : variant.settings
      servers.push(await startServer({ ...variant, settings }, redis.url))
    }
    const traces = []
    for (const route of ROUTES) {
      for (const server of servers) {
        log(`warm-up ${route.name} · ${server.variant.name}`)
        traces.push({ variant: server.variant.name, route: route.name, ...await warmUp(storeOf(server), server, route, plan) })
      }
    }
    const runs = []
    for (let rep = 0; rep < plan.reps; rep++) {
      // each repetition starts one variant later, so no variant always runs right after the same one
      const order = [...servers.slice(rep % servers.length), ...servers.slice(0, rep % servers.length)]
      for (const route of ROUTES) {
        for (const server of order) {
          const run = await measure(storeOf(server), server, route, plan.duration)
          runs.push({ rep, variant: server.variant.name, route: route.name, ...run })
          log(`rep ${rep + 1}/${plan.reps} ${route.name} · ${server.variant.name}: ${Math.round(run.perSecond)} req/s`)
        }
      }
    }
    return { variants, runs, traces }
  } finally {
    for (const server of servers) await server.close()
  }
}

/** An empty store (Redis or Memcached), and a cookie of a freshly stored session when the route wants one. */
async function prepare (redis, server, route) {
  await redis.flush()
  return route.cookie ? await server.sessionCookie() : undefined
}

/** Warms the server up, then counts the commands a few requests send, one request at a time. */
async function warmUp (redis, server, route, plan) {
  const url = server.url + route.path
  const cookie = await prepare(redis, server, route)
  if (plan.warmUpSeconds > 0) await load(url, { cookie, duration: plan.warmUpSeconds })
  const sent = await redis.topLevelCommands(async () => {
    for (let i = 0; i < plan.traced; i++) {
      const response = await fetch(url, { headers: cookie === undefined ? {} : { cookie } })
      if (!response.ok) throw new Error(`${url}: status ${response.status}`)
      await response.arrayBuffer()
    }
  })
  return { roundTrips: sent / plan.traced }
}

async function measure (redis, server, route, duration) {
  const cookie = await prepare(redis, server, route)
  const before = await redis.commandCounts()
  const redisCpuBefore = await redis.cpuMicros()
  await server.startCpu()
  const result = await load(server.url + route.path, { cookie, duration })
  // requests autocannon abandoned at the end still finish: they belong to this run, not the next
  await sleep(SETTLE_MS)
  const cpuMicros = await server.stopCpu()
  const redisCpuMicros = await redis.cpuMicros() - redisCpuBefore
  const commands = countsBetween(before, await redis.commandCounts())
  return { ...result, cpuMicros, redisCpuMicros, commands }
}
