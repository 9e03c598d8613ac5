import Fastify, { type FastifyInstance, type FastifyServerOptions, type LightMyRequestResponse } from 'fastify'
import type { Cluster, Redis } from 'ioredis'
import type { Test } from 'tap'
import redisSession, { type MemcachedClient, type RedisSessionOptions } from '../../lib/index.js'
import { startRedis, type RedisServer } from './redis-server.js'

export const SECRET = 'a-test-secret-that-is-long-enough-0123456789'

/** An app with the plugin registered, whatever store it keeps sessions in. */
export interface SessionApp {
  app: FastifyInstance
  /** Requests `url` with the given cookie (a `name=value` pair) and returns the response. */
  request: (url: string, cookie?: string, method?: 'GET' | 'POST') => Promise<LightMyRequestResponse>
}

export interface TestApp extends SessionApp {
  redis: RedisServer
  /** a client of the test's own, for looking at what the plugin stored */
  admin: Redis
}

/**
 * A private Redis (or the shared one from REDIS_URL), torn down with the test. Starting it per
 * test file keeps command counts free of other tests' traffic.
 */
export async function privateRedis (t: Test): Promise<{ redis: RedisServer, admin: Redis }> {
  const redis = await startRedis()
  const admin = redis.admin()
  t.teardown(async () => {
    admin.disconnect()
    await redis.stop()
  })
  return { redis, admin }
}

/**
 * A Fastify app with the plugin registered on a private Redis; `routes` adds the routes under test.
 * The app is closed with the test.
 */
export async function buildApp (
  t: Test,
  options: Partial<RedisSessionOptions> = {},
  routes: (app: FastifyInstance) => void = () => {},
  serverOptions: FastifyServerOptions = {},
  given?: { redis: RedisServer, admin: Redis }
): Promise<TestApp> {
  const { redis, admin } = given ?? await privateRedis(t)
  return { ...await buildSessionApp(t, { url: redis.url, ...options }, routes, serverOptions), redis, admin }
}

/** A Fastify app with the plugin registered as `options` say (e.g. on Memcached); closed with the test. */
export async function buildSessionApp (
  t: Test,
  options: Partial<RedisSessionOptions>,
  routes: (app: FastifyInstance) => void = () => {},
  serverOptions: FastifyServerOptions = {}
): Promise<SessionApp> {
  const app = Fastify(serverOptions)
  await app.register(redisSession, { secret: SECRET, ...options })
  routes(app)
  await app.ready()
  t.teardown(async () => await app.close())
  const request = async (url: string, cookie?: string, method: 'GET' | 'POST' = 'GET'): Promise<LightMyRequestResponse> =>
    await app.inject({ method, url, headers: cookie === undefined ? {} : { cookie } })
  return { app, request }
}

/**
 * The routes most tests share: `/read` answers the counter `n` (null when absent) and `isNew`,
 * `/write` increments `n` and answers it.
 */
export function counterRoutes (app: FastifyInstance): void {
  app.get('/read', async (request) => ({ n: request.session.get('n') ?? null, isNew: request.session.isNew }))
  app.get('/write', async (request) => {
    const n = (request.session.get('n') as number | undefined ?? 0) + 1
    request.session.set('n', n)
    return { n }
  })
}

/** Every Set-Cookie line of the response. */
export function setCookies (response: LightMyRequestResponse): string[] {
  const header = response.headers['set-cookie']
  return header === undefined ? [] : Array.isArray(header) ? header : [header]
}

/** The `name=value` pair of the response's session cookie, or undefined when none was set. */
export function sessionCookie (response: LightMyRequestResponse, name = 'session'): string | undefined {
  return setCookies(response).map((line) => line.split(';')[0]).find((pair) => pair.startsWith(name + '='))
}

/** The session id inside a `session=<id>.<signature>` pair. */
export function idOf (cookie: string): string {
  return cookie.slice(cookie.indexOf('=') + 1, cookie.lastIndexOf('.'))
}

export interface TrafficRecorder {
  /** command names the client sent, in order */
  commands: string[]
  /** batches of commands sent without waiting for a reply in between */
  roundTrips: number
  reset: () => void
}

/**
 * Records what a client sends. Commands issued in the same tick travel together, so each tick
 * with commands is one round trip.
 */
export function recordTraffic (client: Redis | Cluster): TrafficRecorder {
  return recordCalls(client as unknown as Record<string, (...args: unknown[]) => unknown>, 'sendCommand', (args) => (args[0] as { name: string }).name)
}

const OPCODES: Record<number, string> = { 0x00: 'get', 0x02: 'add', 0x03: 'replace', 0x04: 'delete', 0x1c: 'touch', 0x1d: 'gat' }

/** `recordTraffic` for a memjs client: its requests by opcode (`gat`, `add`, `replace`, …). */
export function recordMemcachedTraffic (client: MemcachedClient): TrafficRecorder {
  return recordCalls(client as unknown as Record<string, (...args: unknown[]) => unknown>, 'perform', (args) => OPCODES[(args[1] as Buffer)[1]] ?? 'other')
}

function recordCalls (client: Record<string, (...args: unknown[]) => unknown>, method: string, nameOf: (args: unknown[]) => string): TrafficRecorder {
  const recorder: TrafficRecorder = {
    commands: [],
    roundTrips: 0,
    reset () {
      recorder.commands = []
      recorder.roundTrips = 0
    }
  }
  let inBatch = false
  const send = client[method].bind(client)
  client[method] = (...args: unknown[]) => {
    recorder.commands.push(nameOf(args))
    if (!inBatch) {
      inBatch = true
      recorder.roundTrips++
      process.nextTick(() => { inBatch = false })
    }
    return send(...args)
  }
  return recorder
}
