// npm run bench [-- --quick | --soak | --profile] [--reps n] [--duration s] [--requests n]
import { mkdirSync, writeFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { parseArgs } from 'node:util'
import { compare } from './compare.js'
import { startMemcached } from './memcached.js'
import { profileRoutes } from './profile.js'
import { startRedis } from './redis.js'
import { render, summarise } from './report.js'
import { soak } from './soak.js'

const PLANS = {
  full: { reps: 5, duration: 2, warmUpSeconds: 1, traced: 20, profileSeconds: 10, soakRequests: 1_000_000, soakSamples: 20, soakWarmUp: 20_000 },
  quick: { reps: 1, duration: 1, warmUpSeconds: 0, traced: 20, profileSeconds: 3, soakRequests: 100_000, soakSamples: 10, soakWarmUp: 5_000 }
}

const argv = process.argv.slice(2)
const { values: args } = parseArgs({
  args: argv,
  options: {
    quick: { type: 'boolean' },
    soak: { type: 'boolean' },
    profile: { type: 'boolean' },
    reps: { type: 'string' },
    duration: { type: 'string' },
    requests: { type: 'string' }
  }
})
const plan = {
  ...PLANS[args.quick ? 'quick' : 'full'],
  ...(args.reps && { reps: Number(args.reps) }),
  ...(args.duration && { duration: Number(args.duration), profileSeconds: Number(args.duration) }),
  ...(args.requests && { soakRequests: Number(args.requests) }),
  command: 'npm run bench' + (argv.length > 0 ? ' -- ' + argv.join(' ') : '')
}
// the committed results come from full runs only
const resultsFile = new URL(args.quick ? '.tmp/RESULTS.quick.md' : 'RESULTS.md', import.meta.url)
const log = (line) => process.stderr.write(line + '\n')

// 'exit' handlers kill the children by PID; a signal alone would skip them
process.once('SIGINT', () => process.exit(130))
process.once('SIGTERM', () => process.exit(143))

const redis = await startRedis()
try {
  if (args.soak) {
    await soak(redis, plan, log)
  } else if (args.profile) {
    await profileRoutes(redis, plan, log)
  } else {
    const started = Date.now()
    const loadAtStart = loadavg()[0]
    const memcached = await startMemcached()
    try {
      const markdown = render(summarise(await compare(redis, memcached, plan, log)), { plan, redisVersion: await redis.version(), memcachedVersion: await memcached.version(), loadAtStart })
      mkdirSync(new URL('.', resultsFile), { recursive: true })
      writeFileSync(resultsFile, markdown)
      console.log(markdown)
    } finally {
      await memcached.stop()
    }
    log(`${Math.round((Date.now() - started) / 1000)} s; written to ${resultsFile.pathname}`)
  }
} finally {
  await redis.stop()
}
