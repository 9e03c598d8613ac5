import { fork } from 'node:child_process'
import { once } from 'node:events'
import { Agent, request as httpRequest } from 'node:http'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { setTimeout as sleep } from 'node:timers/promises'
import { startCluster, startSentinelGroup, startStandalone } from './faults-redis.js'

// Load with faults: virtual users drive mixed read/write traffic at an app (its own process) while
// Redis is restarted and failed over. Each user checks that its own counter only ever moves by its
// own writes: a write answers the new value, a read must show the last acknowledged write (or a
// write whose answer was an error, which may or may not have landed), or a fresh session after a loss.
//
//   npm run build && node bench/faults.js [--duration 60] [--users 50] [--only sentinel|cluster|standalone] [--replicas 1]
//
// sentinel: master + replica + 3 sentinels, `replicas: { count: 1 }`; the replica is restarted,
// Sentinel fails over, then the master crashes and comes back. Sessions lost must be 0.
// cluster: 3 masters with a replica each, `replicas: { count: 1 }`; a master crashes, its replica is
// promoted, the crashed one comes back empty as its replica, and the same again the other way.
// Sessions lost must be 0.
// `--replicas 0` runs either without the option, to see what it buys.
// standalone (the control): one Redis without persistence, restarted once. Sessions are lost there,
// which shows the check can tell.

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '60' },
    users: { type: 'string', default: '50' },
    only: { type: 'string' },
    replicas: { type: 'string', default: '1' }
  }
})
const DURATION = Number(args.duration) * 1000
const USERS = Number(args.users)
const REPLICAS = Number(args.replicas) > 0 ? { replicas: { count: Number(args.replicas), timeout: 500 } } : {}
const REPLICAS_LABEL = REPLICAS.replicas === undefined ? 'no replicas option' : `replicas: ${JSON.stringify(REPLICAS.replicas)}`
const agent = new Agent({ keepAlive: true, maxSockets: USERS })

/** Starts bench/faults-app.js with the plugin `options`; resolves once it listens. */
async function startApp (options) {
  const child = fork(fileURLToPath(new URL('faults-app.js', import.meta.url)), [JSON.stringify(options)], {
    execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc']
  })
  const kill = () => child.kill('SIGKILL')
  process.on('exit', kill)
  const [ready] = await Promise.race([
    once(child, 'message'),
    once(child, 'exit').then(([code]) => { throw new Error(`the app exited with code ${code}`) })
  ])
  const ask = async (type) => {
    const answer = new Promise((resolve) => child.once('message', resolve))
    child.send({ type })
    return await answer
  }
  return {
    port: ready.port,
    memory: async () => await ask('memory'),
    async close () {
      child.send({ type: 'close' })
      await once(child, 'exit')
      process.off('exit', kill)
    }
  }
}

/** GET on the app; resolves to the status, the JSON body and the session cookie it set, if any. */
function get (port, path, cookie) {
  return new Promise((resolve) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, agent, timeout: 15_000, headers: cookie === undefined ? {} : { cookie } }, (res) => {
      const chunks = []
      res.on('data', (chunk) => chunks.push(chunk))
      res.on('end', () => {
        const setCookie = (res.headers['set-cookie'] ?? []).map((line) => line.split(';')[0]).find((pair) => pair.startsWith('session='))
        let body
        try { body = JSON.parse(Buffer.concat(chunks).toString()) } catch {}
        resolve({ status: res.statusCode, body, setCookie })
      })
    })
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', (err) => resolve({ status: 0, error: err.message }))
    req.end()
  })
}

function newStats () {
  return {
    requests: 0,
    statuses: {},
    unavailable: 0,
    /** sessions whose acknowledged writes were lost: seen fresh, or with a smaller counter */
    lost: 0,
    /** a response with another user's session, or a counter moved by writes that are not ours */
    wrongSession: 0,
    phantom: 0,
    /** an id that still opened its session after regenerate() answered 200 */
    oldIdAlive: 0,
    /** sessions given up after regenerate() answered 503 (the old id may be gone, the new one unknown) */
    abandoned: 0,
    sessions: 0,
    acknowledgedWrites: 0,
    /** 503s and 200s per second since the start, for the timeline */
    unavailableBySecond: new Map(),
    okBySecond: new Map(),
    /** ms: the longest time without a 200 for anyone, and for one user between two of theirs */
    lastOk: 0,
    longestGap: 0,
    longestUserGap: 0,
    anomalies: []
  }
}

class VirtualUser {
  constructor (index, port, stats, started) {
    this.index = index
    this.port = port
    this.stats = stats
    this.started = started
    this.lastOk = started
    this.generation = 0
    this.reset()
  }

  reset () {
    this.cookie = undefined
    this.owner = `vu${this.index}-${this.generation++}`
    this.lastAck = 0
    /** writes answered with an error since the last acknowledged one: each may or may not have landed */
    this.ambiguous = 0
    this.regenerateFailed = false
  }

  async request (path, cookie) {
    const response = await get(this.port, path, cookie)
    const { stats } = this
    stats.requests++
    stats.statuses[response.status] = (stats.statuses[response.status] ?? 0) + 1
    const second = Math.floor((Date.now() - this.started) / 1000)
    if (response.status === 200) {
      stats.okBySecond.set(second, (stats.okBySecond.get(second) ?? 0) + 1)
      const now = Date.now()
      stats.longestGap = Math.max(stats.longestGap, now - (stats.lastOk || this.started))
      stats.longestUserGap = Math.max(stats.longestUserGap, now - this.lastOk)
      stats.lastOk = now
      this.lastOk = now
    } else if (response.status === 503) {
      stats.unavailable++
      stats.unavailableBySecond.set(second, (stats.unavailableBySecond.get(second) ?? 0) + 1)
    } else if (response.status !== 200) {
      this.anomaly(`status ${response.status} ${response.error ?? JSON.stringify(response.body)}`)
    }
    return response
  }

  anomaly (what) {
    if (this.stats.anomalies.length < 20) this.stats.anomalies.push(`${((Date.now() - this.started) / 1000).toFixed(1)} s, ${this.owner}: ${what}`)
  }

  /** Checks a 200 answer for this user's session; false when the session is gone and was replaced. */
  check (body, { wrote }) {
    const { stats } = this
    if (body.isNew) {
      if (this.regenerateFailed) {
        stats.abandoned++
      } else {
        stats.lost++
        this.anomaly(`session lost after ${this.lastAck} acknowledged writes`)
      }
      return false
    }
    if (body.owner !== this.owner) {
      stats.wrongSession++
      this.anomaly(`saw the session of ${body.owner}`)
      return false
    }
    this.regenerateFailed = false
    const expected = this.lastAck + (wrote ? 1 : 0)
    if (body.n < expected) {
      stats.lost++
      this.anomaly(`counter went back from ${this.lastAck} to ${body.n}`)
      return false
    }
    if (body.n > expected + this.ambiguous) {
      stats.phantom++
      this.anomaly(`counter at ${body.n}, more than ${expected} + ${this.ambiguous} writes that failed`)
    }
    return true
  }

  async create () {
    const response = await this.request('/write?owner=' + this.owner)
    if (response.status !== 200) return
    if (response.body.owner !== this.owner || response.body.n !== 1 || response.setCookie === undefined) {
      this.stats.wrongSession++
      this.anomaly(`a new session answered ${JSON.stringify(response.body)}`)
      return
    }
    this.cookie = response.setCookie
    this.lastAck = 1
    this.stats.sessions++
    this.stats.acknowledgedWrites++
  }

  async read () {
    const response = await this.request('/read', this.cookie)
    if (response.status === 200 && !this.check(response.body, { wrote: false })) this.reset()
  }

  async write () {
    const response = await this.request('/write?owner=' + this.owner, this.cookie)
    if (response.status !== 200) {
      this.ambiguous++
      return
    }
    if (!this.check(response.body, { wrote: true })) {
      // the write went to a fresh session, which is now this user's (or nobody's)
      this.reset()
      return
    }
    this.lastAck = response.body.n
    this.ambiguous = 0
    this.stats.acknowledgedWrites++
  }

  async regenerate () {
    const old = this.cookie
    const response = await this.request('/login', old)
    if (response.status !== 200) {
      this.regenerateFailed = true
      return
    }
    if (!this.check(response.body, { wrote: false })) return this.reset()
    if (response.setCookie === undefined || response.setCookie === old) {
      this.anomaly('regenerate() set no new cookie')
      return
    }
    this.cookie = response.setCookie
    // the save under the new id was acknowledged: what it holds is acknowledged too
    this.lastAck = response.body.n
    this.ambiguous = 0
    const after = await this.request('/read', old)
    if (after.status === 200 && !after.body.isNew) {
      this.stats.oldIdAlive++
      this.anomaly('the id before regenerate() still opens the session')
    }
  }

  async run (until) {
    while (Date.now() < until) {
      const dice = Math.random()
      if (this.cookie === undefined) await this.create()
      else if (dice < 0.02) await this.regenerate()
      else if (dice < 0.45) await this.write()
      else await this.read()
      await sleep(Math.random() * 10)
    }
  }

  /** After the faults: the session must still hold the last acknowledged value. */
  async final () {
    if (this.cookie === undefined) return
    for (let attempt = 0; attempt < 40; attempt++) {
      const response = await this.request('/read', this.cookie)
      if (response.status === 200) {
        this.check(response.body, { wrote: false })
        return
      }
      await sleep(250)
    }
    this.anomaly('no answer after the faults')
  }
}

/** `[3, 4, 5, 9]` as `3–5 s, 9 s` */
function spans (seconds) {
  const ranges = []
  for (const s of seconds) {
    const last = ranges.at(-1)
    if (last !== undefined && s === last[1] + 1) last[1] = s
    else ranges.push([s, s])
  }
  return ranges.map(([a, b]) => a === b ? `${a} s` : `${a}–${b} s`).join(', ') || 'none'
}

const mib = (bytes) => (bytes / 1024 / 1024).toFixed(1) + ' MiB'

async function scenario ({ name, options, events, duration }) {
  const app = await startApp(options)
  const stats = newStats()
  const started = Date.now()
  const until = started + duration
  const users = Array.from({ length: USERS }, (_, i) => new VirtualUser(i, app.port, stats, started))
  const traffic = Promise.all(users.map(async (user) => await user.run(until)))

  await sleep(3000)
  const memoryBefore = await app.memory()
  const timeline = []
  for (const event of events) {
    const wait = started + event.at * duration - Date.now()
    if (wait > 0) await sleep(wait)
    const t0 = Date.now()
    const detail = await event.run()
    timeline.push(`${((t0 - started) / 1000).toFixed(1)} s: ${event.name}${detail ? ' (' + detail + ')' : ''}, ${((Date.now() - t0) / 1000).toFixed(1)} s`)
  }
  await traffic
  await Promise.all(users.map(async (user) => await user.final()))
  const memoryAfter = await app.memory()
  await app.close()

  const trafficSeconds = Array.from({ length: Math.floor(duration / 1000) }, (_, s) => s)
  return {
    name,
    duration: (Date.now() - started) / 1000,
    stats,
    timeline,
    unavailableAt: spans([...stats.unavailableBySecond.keys()].sort((a, b) => a - b)),
    nothingServed: spans(trafficSeconds.filter((s) => !stats.okBySecond.has(s))),
    memory: {
      heapBefore: memoryBefore.heapUsed,
      heapAfter: memoryAfter.heapUsed,
      rssBefore: memoryBefore.rss,
      rssAfter: memoryAfter.rss
    }
  }
}

function report (result) {
  const { stats, memory } = result
  const statuses = Object.entries(stats.statuses).map(([status, count]) => `${status}: ${count}`).join(', ')
  const lines = [
    `## ${result.name}`,
    '',
    ...result.timeline.map((line) => `- ${line}`),
    '',
    '| | |',
    '|---|---|',
    `| virtual users, time | ${USERS}, ${result.duration.toFixed(0)} s |`,
    `| requests | ${stats.requests} (${statuses}) |`,
    `| 503s | ${stats.unavailable}, at ${result.unavailableAt} |`,
    `| seconds of traffic without a single 200 | ${result.nothingServed} |`,
    `| longest wait for a 200: anyone's, one user's | ${(stats.longestGap / 1000).toFixed(1)} s, ${(stats.longestUserGap / 1000).toFixed(1)} s |`,
    `| 503s per second (s:count) | ${[...stats.unavailableBySecond].sort(([a], [b]) => a - b).map(([s, n]) => `${s}:${n}`).join(' ') || '–'} |`,
    `| sessions started, acknowledged writes | ${stats.sessions}, ${stats.acknowledgedWrites} |`,
    `| sessions lost | **${stats.lost}** |`,
    `| wrong-session reads | **${stats.wrongSession}** |`,
    `| counter moved by writes not acknowledged or not ours | ${stats.phantom} |`,
    `| old id alive after regenerate() | ${stats.oldIdAlive} |`,
    `| sessions given up after a 503 on regenerate() | ${stats.abandoned} |`,
    `| app heap after GC, start → end | ${mib(memory.heapBefore)} → ${mib(memory.heapAfter)} (${memory.heapAfter >= memory.heapBefore ? '+' : ''}${mib(memory.heapAfter - memory.heapBefore)}) |`,
    `| app RSS, start → end | ${mib(memory.rssBefore)} → ${mib(memory.rssAfter)} |`
  ]
  if (stats.anomalies.length > 0) lines.push('', 'First anomalies:', ...stats.anomalies.map((a) => `- ${a}`))
  console.log(lines.join('\n') + '\n')
}

const failures = []
const sessionsMustSurvive = (result) => {
  if (result.stats.lost > 0) failures.push(`${result.name}: ${result.stats.lost} sessions lost`)
}
const nobodyElses = (result) => {
  if (result.stats.wrongSession > 0 || result.stats.phantom > 0 || result.stats.oldIdAlive > 0) {
    failures.push(`${result.name}: ${result.stats.wrongSession} wrong-session reads, ${result.stats.phantom} phantom increments, ${result.stats.oldIdAlive} old ids alive`)
  }
}

console.log(`# Load with faults: ${USERS} virtual users, ${new Date().toISOString()}\n`)

if (args.only === undefined || args.only === 'sentinel') {
  const group = await startSentinelGroup()
  try {
    const result = await scenario({
      name: `Sentinel, ${REPLICAS_LABEL}`,
      duration: DURATION,
      options: { sentinel: { sentinels: group.sentinels, name: group.name }, ...REPLICAS },
      events: [
        { at: 0.25, name: 'replica restarted (down 2 s)', run: async () => { await group.restartReplica(2000) } },
        {
          at: 0.45,
          name: 'SENTINEL FAILOVER, until the old master is a replica in sync',
          run: async () => {
            const { to } = await group.failover()
            await group.settled()
            return `new master :${to.port}`
          }
        },
        {
          at: 0.7,
          name: 'master crashed (SIGKILL), failed over, restarted empty, until in sync',
          run: async () => {
            const { to } = await group.crashMaster()
            await group.settled()
            return `new master :${to.port}`
          }
        }
      ]
    })
    report(result)
    if (REPLICAS.replicas !== undefined) sessionsMustSurvive(result)
    nobodyElses(result)
  } finally {
    await group.stop()
  }
}

if (args.only === undefined || args.only === 'cluster') {
  const cluster = await startCluster()
  try {
    const crash = async () => `new master :${(await cluster.crashMaster()).to.port}`
    const result = await scenario({
      name: `Cluster, 3 masters with a replica each, ${REPLICAS_LABEL}`,
      duration: DURATION,
      options: { cluster: { nodes: cluster.nodes }, ...REPLICAS },
      events: [
        { at: 0.25, name: 'a master crashed (SIGKILL), until its replica is promoted', run: crash },
        { at: 0.35, name: 'the crashed master restarted empty, until it acknowledges writes as the new master\'s replica', run: async () => await cluster.rejoin() },
        { at: 0.6, name: 'the new master crashed in turn, until the first is promoted again', run: crash },
        { at: 0.7, name: 'restarted empty, until it acknowledges writes as a replica', run: async () => await cluster.rejoin() }
      ]
    })
    report(result)
    if (REPLICAS.replicas !== undefined) sessionsMustSurvive(result)
    nobodyElses(result)
  } finally {
    await cluster.stop()
  }
}

if (args.only === undefined || args.only === 'standalone') {
  const redis = await startStandalone()
  try {
    const result = await scenario({
      name: 'Control: one Redis without persistence or replicas, restarted',
      duration: Math.min(DURATION, 20_000),
      options: { url: redis.url },
      events: [
        {
          at: 0.4,
          name: 'Redis restarted (down 1 s, data gone)',
          run: async () => {
            await redis.node.stop('SIGTERM')
            await sleep(1000)
            await redis.node.start()
          }
        }
      ]
    })
    report(result)
    if (result.stats.lost === 0) failures.push('control: no session was lost, so the check cannot tell')
    nobodyElses(result)
  } finally {
    await redis.stop()
  }
}

agent.destroy()
if (failures.length > 0) {
  console.log('FAILED:\n' + failures.map((f) => `- ${f}`).join('\n'))
  process.exitCode = 1
} else {
  const withReplicas = REPLICAS.replicas === undefined ? '' : 'no acknowledged write lost with replicas, '
  console.log(`OK: ${withReplicas}no session seen by another user, no old id alive after regenerate().`)
}
