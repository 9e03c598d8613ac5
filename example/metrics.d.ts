// Types of metrics.js for test/metrics.test.ts.
import type { Registry } from 'prom-client'

export function sessionMetrics (registry?: Registry): { registry: Registry, close: () => void }
