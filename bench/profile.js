// `node bench/profile.js <file.cpuprofile> [count]` prints a profile's top frames by self time;
// `node bench/run.js --profile` records one per route of this plugin first.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { load } from './load.js'
import { startServer } from './server.js'
import { FLOOR_VARIANT, OURS_CACHED, oursIn, ROUTES } from './variants.js'

const PROFILED_ROUTES = ['read', 'write']
const PROFILE_DIR = fileURLToPath(new URL('.tmp/profiles/', import.meta.url))

/** Self time (ms) by `keyOf(callFrame)`, largest first, without the idle time. */
export function selfTimes (profile, keyOf = frameOf) {
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]))
  const byKey = new Map()
  for (let i = 0; i < profile.samples.length; i++) {
    const { callFrame } = nodes.get(profile.samples[i])
    if (callFrame.functionName === '(idle)') continue
    const key = keyOf(callFrame)
    byKey.set(key, (byKey.get(key) ?? 0) + profile.timeDeltas[i] / 1000)
  }
  return [...byKey].sort((a, b) => b[1] - a[1])
}

function frameOf (callFrame) {
  const { functionName, url, lineNumber } = callFrame
  if (url === '') return functionName || '(anonymous)'
  return `${functionName || '(anonymous)'} ${pathOf(url)}:${lineNumber + 1}`
}

const pathOf = (url) => url.startsWith('file://') ? relative(process.cwd(), fileURLToPath(url)) : url

/** Who owns the code: this plugin (dist/), a package, Node's own JS, or native code and the VM. */
function ownerOf ({ url }) {
  const path = pathOf(url)
  if (path === '') return 'native, GC and VM'
  if (path.startsWith('node:')) return 'node: internals'
  if (path.startsWith('dist/')) return 'fastify-redis-sessions (dist/)'
  const inPackage = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path)
  return inPackage === null ? path : inPackage[1]
}

/**
 * A profile's top `count` frames by self time, then self time by owner, as printable lines;
 * with `requests`, times are also given per request.
 */
export function topFrames (file, count = 15, requests = undefined) {
  const profile = JSON.parse(readFileSync(file, 'utf8'))
  const frames = selfTimes(profile)
  const busy = frames.reduce((total, [, ms]) => total + ms, 0)
  const line = ([label, ms]) => [
    ms.toFixed(0).padStart(7) + ' ms',
    (100 * ms / busy).toFixed(1).padStart(5) + ' %',
    ...(requests === undefined ? [] : [(1000 * ms / requests).toFixed(1).padStart(6) + ' µs/req']),
    ' ' + label
  ].join(' ')
  return [
    `busy ${Math.round(busy)} ms${requests === undefined ? '' : ` over ${requests} requests (${(1000 * busy / requests).toFixed(1)} µs/req)`}`,
    `top ${count} frames by self time:`,
    ...frames.slice(0, count).map(line),
    'self time by owner (from 0.5 %):',
    ...selfTimes(profile, ownerOf).filter(([, ms]) => ms >= busy / 200).map(line)
  ].join('\n')
}

/**
 * Profiles this plugin (string layout), and the floor for reference, one process per variant and
 * route: warmed up first, so the profile holds the steady state, not start-up. Prints each
 * profile's top frames.
 */
export async function profileRoutes (redis, plan, log) {
  rmSync(PROFILE_DIR, { recursive: true, force: true })
  mkdirSync(PROFILE_DIR, { recursive: true })
  for (const route of ROUTES.filter(({ name }) => PROFILED_ROUTES.includes(name))) {
    for (const variant of [oursIn('string'), OURS_CACHED, FLOOR_VARIANT]) {
      const file = join(PROFILE_DIR, `${variant.name.replace(/\W+/g, '-').replace(/^-|-$/g, '')}-${route.name}.cpuprofile`)
      const server = await startServer(variant, redis.url)
      let requests
      try {
        await redis.flush()
        const cookie = route.cookie ? await server.sessionCookie() : undefined
        await load(server.url + route.path, { cookie, duration: Math.max(1, plan.warmUpSeconds) })
        log(`profiling ${variant.name} on ${route.name} for ${plan.profileSeconds} s`)
        await server.startProfile()
        const result = await load(server.url + route.path, { cookie, duration: plan.profileSeconds })
        writeFileSync(file, await server.stopProfile())
        requests = result.requests
        log(`${Math.round(result.perSecond)} req/s under the profiler`)
      } finally {
        await server.close()
      }
      console.log(`\n## ${route.name} · ${variant.name} (${relative(process.cwd(), file)})\n\n${topFrames(file, 15, requests)}`)
    }
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  if (process.argv[2] === undefined) {
    console.error('usage: node bench/profile.js <file.cpuprofile> [count]')
    process.exitCode = 1
  } else {
    console.log(topFrames(process.argv[2], Number(process.argv[3] ?? 15)))
  }
}
