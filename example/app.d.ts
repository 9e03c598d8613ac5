// Types of app.js for the tests that build the demo (test/demo.test.ts, test/e2e.test.ts).
import type { FastifyInstance } from 'fastify'

/** Seconds a session lives without a request (the plugin's `timeout`). */
export const SESSION_TIMEOUT: number

export function buildApp (opts: { secret: string, redisUrl: string, logger?: boolean | object }): Promise<FastifyInstance>
