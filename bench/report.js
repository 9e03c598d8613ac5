import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { cpus, loadavg, release, type } from 'node:os'
import { CONNECTIONS } from './load.js'
import { ANCHORS, BARE, FLOOR, ROUTES } from './variants.js'

/** Issue 5's targets: this plugin's req/s over another variant's, in the same repetitions. */
const TARGETS = [
  { route: 'no-cookie', against: BARE, min: 0.95 },
  { route: 'read', against: FLOOR, min: 0.85 },
  ...ANCHORS.map((anchor) => ({ route: 'read', against: anchor, min: 2 })),
  { route: 'write', against: FLOOR, min: 0.85 },
  ...ANCHORS.map((anchor) => ({ route: 'write', against: anchor, min: 1.8 }))
]

/** DESIGN.md's round-trip budget of the string layout. */
const ROUND_TRIP_BUDGET = { 'no-cookie': 0, read: 1, write: 2, new: 1 }

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}
const sum = (values) => values.reduce((total, value) => total + value, 0)
const fixed = (value, digits = 2) => value.toFixed(digits)
const trimmed = (value) => String(Number(value.toFixed(2)))

/** Medians and per-request figures by route and variant, from the runs of `compare()`. */
export function summarise ({ variants, runs, traces }) {
  const runsOf = (route, variant) => runs.filter((run) => run.route === route && run.variant === variant)
  /** The median over repetitions of the ratio within each repetition, whose runs were back to back. */
  const ratio = (route, variant, other) => {
    const others = runsOf(route, other)
    return median(runsOf(route, variant).map((run) => run.perSecond / others.find((o) => o.rep === run.rep).perSecond))
  }
  const summary = new Map()
  for (const { name: route } of ROUTES) {
    const rows = new Map()
    for (const { name: variant } of variants) {
      const own = runsOf(route, variant)
      const requests = sum(own.map((run) => run.requests))
      const commands = new Map()
      for (const run of own) for (const [command, calls] of run.commands) commands.set(command, (commands.get(command) ?? 0) + calls)
      const trace = traces.find((t) => t.route === route && t.variant === variant)
      rows.set(variant, {
        perSecond: median(own.map((run) => run.perSecond)),
        p50: median(own.map((run) => run.p50)),
        p99: median(own.map((run) => run.p99)),
        cpuPerRequest: median(own.map((run) => run.cpuMicros / run.requests)),
        redisCpuPerRequest: median(own.map((run) => run.redisCpuMicros / run.requests)),
        commandsPerRequest: sum([...commands.values()]) / requests,
        byCommand: [...commands].map(([command, calls]) => [command, calls / requests]).sort((a, b) => b[1] - a[1]),
        roundTrips: trace.roundTrips,
        ratio: (other) => ratio(route, variant, other)
      })
    }
    summary.set(route, rows)
  }
  return summary
}

/** Markdown table, padded so the printed text lines up too. */
function table (headers, rows, align = headers.map((_, i) => i === 0 ? 'left' : 'right')) {
  const widths = headers.map((header, i) => Math.max(header.length, ...rows.map((row) => String(row[i]).length)))
  const line = (cells) => '| ' + cells.map((cell, i) => align[i] === 'left' ? String(cell).padEnd(widths[i]) : String(cell).padStart(widths[i])).join(' | ') + ' |'
  const rule = '|' + widths.map((width, i) => align[i] === 'left' ? ':' + '-'.repeat(width + 1) : '-'.repeat(width + 1) + ':').join('|') + '|'
  return [line(headers), rule, ...rows.map(line)].join('\n')
}

const oursNames = (summary) => [...summary.get('read').keys()].filter((name) => name.startsWith('ours'))

function ratiosTable (summary) {
  const rows = []
  for (const ours of oursNames(summary)) {
    for (const { name: route } of ROUTES) {
      const byVariant = summary.get(route)
      const row = byVariant.get(ours)
      rows.push([route, ours, ...[BARE, FLOOR, ...ANCHORS].map((other) => fixed(row.ratio(other))),
        `${Math.round(row.cpuPerRequest)} / ${Math.round(byVariant.get(FLOOR).cpuPerRequest)} / ${Math.round(byVariant.get(BARE).cpuPerRequest)}`])
    }
  }
  return table(['route', 'variant', '× bare', '× floor', ...ANCHORS.map((anchor) => '× ' + anchor), 'CPU µs/req: ours / floor / bare'], rows)
}

function targetsTable (summary) {
  const rows = []
  for (const ours of oursNames(summary)) {
    for (const { route, against, min } of TARGETS) {
      const measured = summary.get(route).get(ours).ratio(against)
      // the floor makes only the round trips: no session plugin can do better than it does here
      const ceiling = summary.get(route).get(FLOOR).ratio(against)
      rows.push([`${route}: ≥ ${min} × ${against}`, ours, fixed(measured), fixed(ceiling), measured >= min ? 'pass' : '**FAIL**'])
    }
  }
  const string = 'ours (string)'
  if (oursNames(summary).includes(string)) {
    for (const [route, budget] of Object.entries(ROUND_TRIP_BUDGET)) {
      const measured = summary.get(route).get(string).roundTrips
      rows.push([`${route}: ${budget} round trip${budget === 1 ? '' : 's'} (DESIGN.md)`, string, fixed(measured), fixed(summary.get(route).get(FLOOR).roundTrips), measured <= budget ? 'pass' : '**FAIL**'])
    }
  }
  return table(['target', 'variant', 'measured', 'the floor', 'result'], rows)
}

function routeTable (rows) {
  const body = [...rows].map(([variant, row]) => [
    variant,
    Math.round(row.perSecond),
    fixed(row.ratio(BARE)),
    fixed(row.ratio(FLOOR)),
    row.p50,
    row.p99,
    Math.round(row.cpuPerRequest),
    Math.round(row.redisCpuPerRequest),
    fixed(row.commandsPerRequest),
    fixed(row.roundTrips),
    row.byCommand.filter(([, calls]) => calls >= 0.005).map(([command, calls]) => `${command} ${trimmed(calls)}`).join(', ') || '—'
  ])
  const headers = ['variant', 'req/s', '× bare', '× floor', 'p50 ms', 'p99 ms', 'CPU µs/req', 'Redis CPU µs/req', 'cmds/req', 'round trips/req', 'commands per request']
  return table(headers, body, headers.map((_, i) => i === 0 || i === headers.length - 1 ? 'left' : 'right'))
}

const versionOf = (name) => JSON.parse(readFileSync(new URL(`../node_modules/${name}/package.json`, import.meta.url), 'utf8')).version

function commit () {
  try {
    const hash = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim()
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'lib'], { encoding: 'utf8' }).trim() !== ''
    return dirty ? `${hash} with uncommitted changes in lib/` : hash
  } catch {
    return 'unknown'
  }
}

/** RESULTS.md: environment, ratios, targets, one table per route, and how the figures are made. */
export function render (summary, { plan, redisVersion, memcachedVersion, loadAtStart }) {
  const cpuList = cpus()
  const packages = ['fastify', 'ioredis', 'memjs', '@fastify/session', 'connect-redis', '@mgcrea/fastify-session', '@mgcrea/fastify-session-redis-store', 'autocannon']
  return `# Benchmark results

${new Date().toISOString()} · commit ${commit()} · \`${plan.command}\`

- Node ${process.version}, Redis ${redisVersion}, memcached ${memcachedVersion}, ${packages.map((name) => `${name} ${versionOf(name)}`).join(', ')}
- ${cpuList[0].model} × ${cpuList.length}, ${type()} ${release()}; 1-minute load average ${loadAtStart.toFixed(1)} at the start, ${loadavg()[0].toFixed(1)} at the end (the bench itself keeps about 3 busy; more means other work shared the machine)
- ${plan.reps} interleaved repetition${plan.reps === 1 ? '' : 's'} of ${plan.duration} s per route and variant, ${CONNECTIONS} connections

## This plugin against the others (req/s ratios)

${ratiosTable(summary)}

## Targets (issue 5)

"The floor" is what the floor variant measures against the same variant in the same runs: the
Redis round trips alone, the best any session plugin could reach.

${targetsTable(summary)}

${ROUTES.map((route) => `## ${route.name}: ${route.about}\n\n${routeTable(summary.get(route.name))}`).join('\n\n')}

## Method

- One private \`redis-server\` (loopback, no persistence), emptied before every run. Each variant is
  its own Node process (\`bench/servers/\`); autocannon runs in the parent. Variants run back to back
  within a repetition, each repetition starting one variant later (A B C … B C A …).
- **req/s, p50, p99**: medians over the repetitions. **× bare, × floor, × anchor**: the ratio within
  each repetition, median over the repetitions. autocannon records whole milliseconds (0 = under 1 ms).
- **floor**: bare Fastify doing one ioredis \`GET\` per read, \`GET\` + \`SET\` per write and one \`SET\`
  per new session, keyed by the raw Cookie header: the Redis cost alone.
- **ours (memcached)** and **floor (memcached)** keep their sessions in one private \`memcached\`
  (loopback, 1 GB, one thread), emptied before every run; the floor does one memjs get-and-touch
  (\`GAT\`) per read, \`GAT\` + \`SET\` per write and one \`SET\` per new session. Their Redis CPU
  column is memcached's CPU (\`stats\` rusage), their commands its \`cmd_get\`, \`cmd_set\`,
  \`cmd_touch\` (a \`GAT\` counts as a touch) and deletes, and their round trips the same counters
  over the traced requests.
- **CPU µs/req**: the server process's \`process.cpuUsage()\` (user + system) over a run divided by
  the requests completed, median over the repetitions; a forced full GC before each run keeps one
  run's garbage from being charged to the next. It depends less than req/s on what else the
  machine runs, though contention inflates it too.
  **Redis CPU µs/req**: the same for the Redis process (\`INFO cpu\`), network I/O included.
- **cmds/req, commands per request**: \`INFO commandstats\` increases over the measured runs divided
  by the requests; they include the commands Lua scripts run (an \`evalsha\` that runs \`hgetall\` and
  \`expire\` counts 3).
- **round trips/req**: commands as clients sent them, counted with \`MONITOR\` over ${plan.traced} requests
  sent one at a time after the warm-up; commands run inside scripts are left out. Each command of a
  pipeline or of a \`Promise.all\` counts, so this is an upper bound on network round trips
  (@mgcrea/fastify-session pipelines \`HSET\` + \`EXPIRE\`: one network round trip, counted 2).
- The anchors are set up as their READMEs show, with the same secret length and cookie name:
  @fastify/session + connect-redis with \`saveUninitialized: false\` (connect-redis's recommendation),
  \`cookie.secure: 'auto'\`, defaults otherwise (\`rolling: true\`); @mgcrea/fastify-session + its
  RedisStore with \`cookie.maxAge\` = store ttl (its README's Redis example) and
  \`saveUninitialized: false\`, so untouched requests store nothing in any variant. connect-redis 9
  speaks the node-redis API; a four-method shim maps its calls onto ioredis, the client every
  variant uses.
`
}
