import { load } from './load.js'
import { startServer } from './server.js'
import { oursIn } from './variants.js'

/**
 * Growth over the second half that still counts as level: 1 byte per request. Retaining even
 * one small object per request (16 bytes or more) shows as 16,000 or more; GC noise stays well under.
 */
const LEVEL_BYTES_PER_1000 = 1000

/** Least-squares slope of `y` over `x`. */
function slope (points) {
  const meanX = points.reduce((total, p) => total + p.x, 0) / points.length
  const meanY = points.reduce((total, p) => total + p.y, 0) / points.length
  const covariance = points.reduce((total, p) => total + (p.x - meanX) * (p.y - meanY), 0)
  const variance = points.reduce((total, p) => total + (p.x - meanX) ** 2, 0)
  return covariance / variance
}

const kib = (bytes) => (bytes / 1024).toFixed(0) + ' KiB'

/**
 * `plan.soakRequests` requests on the read route of this plugin, the server's heap sampled after a
 * forced GC every `plan.soakRequests / plan.soakSamples` requests. Memory levels off when the slope
 * over the second half stays under LEVEL_BYTES_PER_1000.
 */
export async function soak (redis, plan, log) {
  const server = await startServer(oursIn('string'), redis.url)
  try {
    await redis.flush()
    const cookie = await server.sessionCookie()
    const url = server.url + '/read'
    // JIT and connection pools settle before the baseline
    await load(url, { cookie, amount: plan.soakWarmUp })
    const step = Math.round(plan.soakRequests / plan.soakSamples)
    const samples = [{ requests: 0, ...await server.heap() }]
    for (let done = step; done <= plan.soakRequests; done += step) {
      const { perSecond } = await load(url, { cookie, amount: step })
      samples.push({ requests: done, ...await server.heap() })
      log(`${done} requests, ${Math.round(perSecond)} req/s, heap ${kib(samples.at(-1).heapUsed)}`)
    }
    const secondHalf = samples.slice(Math.floor(samples.length / 2)).map((s) => ({ x: s.requests / 1000, y: s.heapUsed }))
    const bytesPer1000 = slope(secondHalf)
    const [first, last] = [samples[0], samples.at(-1)]
    console.log(`
## Soak: ${plan.soakRequests} requests on the read route, ours (string)

| requests | heapUsed after GC | rss |
|---:|---:|---:|
${samples.map((s) => `| ${s.requests} | ${kib(s.heapUsed)} | ${kib(s.rss)} |`).join('\n')}

heap before ${kib(first.heapUsed)}, after ${kib(last.heapUsed)}; slope over the second half ${bytesPer1000.toFixed(1)} bytes per 1000 requests
→ ${bytesPer1000 < LEVEL_BYTES_PER_1000 ? 'levels off' : `**does not level off** (limit ${LEVEL_BYTES_PER_1000} bytes per 1000 requests)`}`)
  } finally {
    await server.close()
  }
}
