import { Command, type Cluster, type Redis } from 'ioredis'
import { FST_RS_DECODE_FAILED, FST_RS_STORE_UNAVAILABLE } from '../errors.js'
import type { SaveRequest, SaveResult, StoreOptions } from './store.js'

/** ioredis attaches the command's arguments (session key and data) to its errors: keep them out of logs. */
function withoutArguments (err: unknown): Error {
  delete (err as { command?: unknown }).command
  return err as Error
}

/** Rethrows a Redis failure as FST_RS_STORE_UNAVAILABLE (503) with the original as cause. */
export function unavailable (err: unknown): never {
  throw new FST_RS_STORE_UNAVAILABLE((err as Error).message, { cause: withoutArguments(err) })
}

/** Any Redis failure becomes FST_RS_STORE_UNAVAILABLE (503) with the original as cause. */
export async function unavailableOnError<T> (promise: Promise<T>): Promise<T> {
  return await promise.catch(unavailable)
}

/**
 * Rethrows the failure of a read of a session's record: as `unavailable`, except that a key of
 * another Redis type where the record belongs (WRONGTYPE) is a record that does not decode, not an outage.
 */
export function unreadable (err: unknown): never {
  // Redis 7 starts the message with the code; 6.2 wraps a script's error in ERR
  if (!(err as Error).message.includes('WRONGTYPE')) unavailable(err)
  throw new FST_RS_DECODE_FAILED('the session key holds another Redis type', { cause: withoutArguments(err) })
}

/** A read of a session's record: see `unreadable`. */
export async function readRecord<T> (promise: Promise<T>): Promise<T> {
  return await promise.catch(unreadable)
}

/** Defines a Lua command once per client, shared by every registration that uses it. */
export function defineScript (client: Redis | Cluster, name: string, numberOfKeys: number, lua: string): void {
  if (typeof (client as unknown as Record<string, unknown>)[name] !== 'function') {
    client.defineCommand(name, { numberOfKeys, lua })
  }
}

/**
 * Sends a save's conditional write together with what goes along with it (a regenerate's delete)
 * and the replicas `WAIT`, so they cost one round trip. `lost` is the write's reply when its
 * condition failed: the record was destroyed or regenerated meanwhile. `keys` are the keys written.
 */
export async function sendSave (
  client: Redis | Cluster,
  replicas: StoreOptions['replicas'],
  write: Promise<unknown>,
  alongside: Array<Promise<unknown>>,
  lost: unknown,
  keys: string[]
): Promise<SaveResult> {
  // the common case, a lone write, without Promise.all's allocations
  if (replicas === undefined && alongside.length === 0) {
    return await write.then((reply) => reply === lost ? 'lost' : 'saved', unavailable)
  }
  const waits = replicas === undefined ? [] : waitForReplicas(client, replicas, keys)
  const replies = await unavailableOnError(Promise.all([write, ...alongside, ...waits]))
  if (replies[0] === lost) return 'lost'
  if (replicas !== undefined) {
    const acknowledged = Math.min(...replies.slice(1 + alongside.length) as number[])
    if (acknowledged < replicas.count) throw new FST_RS_STORE_UNAVAILABLE(`${acknowledged} of ${replicas.count} replicas acknowledged the save`)
  }
  return 'saved'
}

/**
 * `WAIT` on the connection that carried the writes, sent right after them. A Cluster would send a
 * keyless WAIT to a random node, proving nothing: there it goes to the node of each written key.
 */
function waitForReplicas (client: Redis | Cluster, { count, timeout }: { count: number, timeout: number }, keys: string[]): Array<Promise<number>> {
  if (!client.isCluster) return [client.wait(count, timeout)]
  return keys.map(async (key) => {
    const wait = new Command('wait', [count, timeout])
    // the third argument routes by slot, as ioredis' own pipelines do
    ;(client as Cluster).sendCommand(wait, undefined, { slot: new Command('exists', [key]).getSlot() })
    return await wait.promise
  })
}

/** The key of the old library's record a save takes over, as a list of none or one, to delete alongside. */
export function adoptedKeys (request: SaveRequest): string[] {
  return request.adoptedKey === undefined ? [] : [request.adoptedKey]
}
