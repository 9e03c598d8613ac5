// Types of app.js for the TypeScript end-to-end test (test/e2e.test.ts).
import type { FastifyInstance } from 'fastify'

export function buildApp (opts: { secret: string, redisUrl: string, logger?: boolean | object }): Promise<FastifyInstance>
