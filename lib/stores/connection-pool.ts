import type { Cluster, Redis } from 'ioredis'
import { FST_RS_STORE_UNAVAILABLE } from '../errors.js'

interface Pooled<T> {
  connection: Redis | Cluster
  value: T
}

/**
 * Connections of their own, copies of `source` (same server, credentials and options), each
 * lent to one caller at a time with what `make` built on it. The first is opened at once, more
 * as callers overlap, up to `size`; a caller that finds none free within `timeout` ms, or whose
 * new connection is not ready by then, gets FST_RS_STORE_UNAVAILABLE.
 */
export class ConnectionPool<T> {
  readonly #source: Redis | Cluster
  readonly #make: (connection: Redis | Cluster) => T
  readonly #size: number
  readonly #timeout: number
  readonly #all: Array<Pooled<T>> = []
  readonly #idle: Array<Pooled<T>> = []
  /** callers waiting for a connection to be given back, first come first served */
  readonly #waiting: Array<(pooled: Pooled<T>) => void> = []

  constructor (source: Redis | Cluster, make: (connection: Redis | Cluster) => T, { size, timeout }: { size: number, timeout: number }) {
    this.#source = source
    this.#make = make
    this.#size = size
    this.#timeout = timeout
    this.#idle.push(this.#open())
  }

  /** What was built on each connection opened so far. */
  get values (): T[] {
    return this.#all.map(({ value }) => value)
  }

  /** Runs `use` with a connection no one else is using meanwhile. */
  async use<R> (use: (value: T) => Promise<R>): Promise<R> {
    const pooled = this.#idle.pop() ?? (this.#all.length < this.#size ? this.#open() : await this.#wait())
    try {
      await ready(pooled.connection, this.#timeout)
      return await use(pooled.value)
    } finally {
      this.#giveBack(pooled)
    }
  }

  /** Closes every connection at once: call it once nothing uses them. */
  close (): void {
    for (const { connection } of this.#all) connection.disconnect()
  }

  #open (): Pooled<T> {
    const connection = this.#source.isCluster ? (this.#source as Cluster).duplicate() : (this.#source as Redis).duplicate()
    // the source's own connection reports outages; these fail their commands meanwhile
    connection.on('error', () => {})
    const pooled = { connection, value: this.#make(connection) }
    this.#all.push(pooled)
    return pooled
  }

  async #wait (): Promise<Pooled<T>> {
    return await new Promise((resolve, reject) => {
      const take = (pooled: Pooled<T>): void => {
        clearTimeout(timer)
        resolve(pooled)
      }
      const timer = setTimeout(() => {
        this.#waiting.splice(this.#waiting.indexOf(take), 1)
        reject(new FST_RS_STORE_UNAVAILABLE(`all ${this.#size} connections for saves stayed busy for ${this.#timeout} ms`))
      }, this.#timeout)
      this.#waiting.push(take)
    })
  }

  #giveBack (pooled: Pooled<T>): void {
    const next = this.#waiting.shift()
    if (next === undefined) this.#idle.push(pooled)
    else next(pooled)
  }
}

/**
 * Resolves once `connection` is ready, and with a Cluster the masters it has not connected to yet:
 * the Cluster refuses a second command for a node still connecting ("Connection is closed."), as
 * a save's write and WAIT would be for a node it has not used yet. A master already connected
 * is not waited for, even when it fails: its commands fail by themselves. Rejects with
 * FST_RS_STORE_UNAVAILABLE once `timeout` ms have passed.
 */
async function ready (connection: Redis | Cluster, timeout: number): Promise<void> {
  const deadline = performance.now() + timeout
  await whenReady(connection, deadline)
  if (!connection.isCluster) return
  const connecting = (connection as Cluster).nodes('master').filter((node) => node.status === 'wait' || node.status === 'connecting')
  await Promise.all(connecting.map(async (node) => await whenReady(node, deadline)))
}

async function whenReady (connection: Redis | Cluster, deadline: number): Promise<void> {
  if (connection.status === 'ready') return
  // a Cluster's node connections are lazy: they connect on their first command
  if (connection.status === 'wait') (connection as Redis).connect().catch(() => {})
  await new Promise<void>((resolve, reject) => {
    const onReady = (): void => {
      clearTimeout(timer)
      resolve()
    }
    const timer = setTimeout(() => {
      connection.off('ready', onReady)
      reject(new FST_RS_STORE_UNAVAILABLE('no connection for the save was ready in time'))
    }, deadline - performance.now())
    connection.once('ready', onReady)
  })
}
