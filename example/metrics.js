import { tracingChannel } from 'node:diagnostics_channel'
import { Counter, Histogram, Registry } from 'prom-client'

const OPERATIONS = ['load', 'save', 'destroy']

/**
 * Prometheus metrics of the sessions, fed by the plugin's tracing channels: how many loads, saves
 * and destroys ended how, how many failed, and how long they took. The channels are the
 * process's, so this counts every registration of the plugin in the process.
 * @param {Registry} [registry] where the metrics are registered; a registry of their own by default
 * @returns {{ registry: Registry, close: () => void }} `close()` unsubscribes
 * @example
 * const metrics = sessionMetrics()
 * app.get('/metrics', { config: { session: false } }, async (request, reply) =>
 *   reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()))
 */
export function sessionMetrics (registry = new Registry()) {
  const operations = new Counter({
    name: 'sessions_operations_total',
    help: 'Session loads, saves and destroys that Redis answered, by outcome (loaded, missing, saved, unchanged, lost, destroyed)',
    labelNames: ['operation', 'layout', 'outcome'],
    registers: [registry]
  })
  const failures = new Counter({
    name: 'sessions_failures_total',
    help: 'Session operations that failed, by error code (FST_RS_STORE_UNAVAILABLE: Redis did not answer)',
    labelNames: ['operation', 'layout', 'code'],
    registers: [registry]
  })
  const duration = new Histogram({
    name: 'sessions_operation_duration_seconds',
    help: 'Time from sending a session operation to Redis to its answer',
    labelNames: ['operation', 'layout'],
    buckets: [0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2],
    registers: [registry]
  })
  // the context object is the same from start to asyncEnd: it keys the start time
  const startedAt = new WeakMap()
  const unsubscribes = OPERATIONS.map((operation) => {
    const channel = tracingChannel(`fastify-redis-sessions:${operation}`)
    const handlers = {
      start: (context) => { startedAt.set(context, process.hrtime.bigint()) },
      // an operation refused at once (Redis known to be down) publishes start, error, end only
      error: (context) => { failures.inc({ operation, layout: context.layout, code: context.error?.code ?? 'unknown' }) },
      asyncEnd: (context) => {
        const seconds = Number(process.hrtime.bigint() - startedAt.get(context)) / 1e9
        duration.observe({ operation, layout: context.layout }, seconds)
        if (context.error === undefined) operations.inc({ operation, layout: context.layout, outcome: context.outcome })
      }
    }
    channel.subscribe(handlers)
    return () => channel.unsubscribe(handlers)
  })
  return { registry, close: () => { for (const unsubscribe of unsubscribes) unsubscribe() } }
}
