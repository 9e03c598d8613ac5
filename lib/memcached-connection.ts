import HashRing from 'hashring'
import memjs from 'memjs'
import { FST_RS_CONNECTION_REJECTED, FST_RS_STORE_UNAVAILABLE } from './errors.js'

/**
 * A memjs client (https://github.com/memcachier/memjs): what the `memcached` option connects with.
 * @example
 * const { client } = app.sessionStore as unknown as SessionStore<MemcachedClient>
 */
export type MemcachedClient = memjs.Client

/**
 * How to reach Memcached: its servers (with SASL credentials), or a memjs client you own.
 * @example
 * const memcached: MemcachedOptions = { servers: ['10.0.0.1:11211', '10.0.0.2:11211'], username: 'app', password: process.env.MEMCACHED_PASSWORD }
 */
export interface MemcachedOptions {
  /** `host:port` of each server, as a list or comma-separated; sessions are spread by consistent (ketama) hashing */
  servers?: string | string[]
  /** SASL user (memcached -S); the binary protocol is the only one that authenticates */
  username?: string
  password?: string
  /**
   * A memjs client you own (its own servers, credentials and hashing); the plugin never closes it.
   * @example
   * { memcached: { client: memjs.Client.create('10.0.0.1:11211,10.0.0.2:11211') } }
   */
  client?: MemcachedClient
}

export interface MemcachedConnection {
  client: MemcachedClient
  /** true when the plugin created the client and so must close it */
  owned: boolean
}

/** Binary protocol status codes the stores act on. */
export const Status = { OK: 0, NOT_FOUND: 1, EXISTS: 2, TOO_LARGE: 3, NOT_STORED: 5 } as const
/** Binary protocol opcodes the stores send. */
export const Opcode = { GET: 0x00, ADD: 0x02, REPLACE: 0x03, DELETE: 0x04, NOOP: 0x0a, TOUCH: 0x1c, GAT: 0x1d } as const

/**
 * Builds the memjs client the options describe, or wraps the one the user gave. Servers are
 * chosen by a ketama ring (memjs's documented `getServer` hook), so adding or losing a server
 * moves only its share of the sessions, and other ketama clients find the same keys.
 */
export function connectMemcached (options: MemcachedOptions, timeouts: { connectTimeout: number, commandTimeout: number }): MemcachedConnection {
  if (options.client !== undefined) return { client: options.client, owned: false }
  const servers = typeof options.servers === 'string' ? options.servers.split(',').map((server) => server.trim()) : options.servers as string[]
  const client = memjs.Client.create(servers.join(','), {
    username: options.username,
    password: options.password,
    timeout: timeouts.commandTimeout / 1000,
    conntimeout: timeouts.connectTimeout / 1000,
    // a retried add or replace whose reply was lost would answer "exists" or "not found": no retries
    retries: 1,
    // failures reach the caller as errors; memjs would also print them to the console
    logger: { log: () => {} }
  })
  if (servers.length > 1) {
    const ring = new HashRing(servers)
    const index = new Map(servers.map((server, i) => [server, i]))
    ;(client as unknown as { getServer: (key: string) => number }).getServer = (key) => index.get(ring.get(key)) as number
  }
  return { client, owned: true }
}

/**
 * Sends one binary protocol request through the client (its framing, routing, SASL and
 * timeouts) and resolves to the response; a failed connection or no reply within `timeout` ms
 * rejects with FST_RS_STORE_UNAVAILABLE, a refused SASL login with FST_RS_CONNECTION_REJECTED.
 */
export async function request (client: MemcachedClient, timeout: number, opcode: number, key: string, extras: Buffer | string = '', value: Buffer | string = ''): Promise<memjs.Response> {
  return await new Promise((resolve, reject) => {
    client.incrSeq()
    const seq = client.seq
    // memjs times requests out on a live socket only: a socket that closed without an error would leave this one waiting
    const timer = setTimeout(() => reject(new FST_RS_STORE_UNAVAILABLE(`Memcached did not answer within ${timeout} ms`)), timeout)
    client.perform(key, memjs.Utils.makeRequestBuffer(opcode, key, extras, value, seq), seq, (err: Error | string | null, response: memjs.Response) => {
      clearTimeout(timer)
      if (err === null) resolve(response)
      else reject(failure(err))
    })
  })
}

/** Sends a no-op to every server; rejects as `request` does when one does not answer. */
export async function pingAll (client: MemcachedClient, timeout: number): Promise<void> {
  const noop = memjs.Utils.makeRequestBuffer(Opcode.NOOP, '', '', '', 0)
  await Promise.all(client.servers.map(async (server) => await new Promise<void>((resolve, reject) => {
    client.incrSeq()
    const seq = client.seq
    // the header's opaque field: the server echoes it, memjs pairs the reply by it
    noop.writeUInt32BE(seq, 12)
    const timer = setTimeout(() => reject(new FST_RS_STORE_UNAVAILABLE(`Memcached ${server.host}:${server.port} did not answer within ${timeout} ms`)), timeout)
    server.onResponse(seq, () => { clearTimeout(timer); resolve() })
    server.onError(seq, (err: Error | string) => { clearTimeout(timer); reject(failure(err, `${server.host}:${server.port}`)) })
    server.write(Buffer.from(noop))
  })))
}

/** memjs reports a refused SASL login as a bare string, and nothing else so. */
function failure (err: Error | string, server?: string): Error {
  const memcached = server === undefined ? 'Memcached' : `Memcached at ${server}`
  if (typeof err === 'string') return new FST_RS_CONNECTION_REJECTED(`${memcached} refused the SASL login (${err}): check memcached.username and memcached.password`)
  return new FST_RS_STORE_UNAVAILABLE(`${memcached} cannot be reached (${err.message}); requests that need a session get 503 until it answers: check that memcached runs where memcached.servers says`, { cause: err })
}

/**
 * Pings every server at register: a refused SASL login fails register with
 * FST_RS_CONNECTION_REJECTED; an unreachable server does not (its sessions get 503 until it answers).
 */
export async function checkMemcached (client: MemcachedClient, timeout: number): Promise<void> {
  await pingAll(client, timeout).catch((err: Error) => {
    if (err instanceof FST_RS_CONNECTION_REJECTED) throw err
  })
}

/** The expiry Memcached takes for `seconds` from now: 0 never expires; beyond 30 days it wants a Unix time. */
export function exptime (seconds: number): number {
  if (seconds === 0) return 0
  // a cut expiry has a fraction; Memcached counts whole seconds
  const whole = Math.ceil(seconds)
  return whole <= THIRTY_DAYS ? whole : Math.floor(Date.now() / 1000) + whole
}

const THIRTY_DAYS = 30 * 24 * 3600
