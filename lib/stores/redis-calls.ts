import type { Cluster, Redis } from 'ioredis'
import { FST_RS_STORE_UNAVAILABLE } from '../errors.js'
import type { SaveResult, StoreOptions } from './store.js'

/** Any Redis failure becomes FST_RS_STORE_UNAVAILABLE (503) with the original as cause. */
export async function unavailableOnError<T> (promise: Promise<T>): Promise<T> {
  try {
    return await promise
  } catch (err) {
    // ioredis attaches the command's arguments (session key and data) to its errors: keep them out of logs
    delete (err as { command?: unknown }).command
    throw new FST_RS_STORE_UNAVAILABLE((err as Error).message, { cause: err })
  }
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
 * condition failed: the record was destroyed or regenerated meanwhile.
 */
export async function sendSave (
  client: Redis | Cluster,
  replicas: StoreOptions['replicas'],
  write: Promise<unknown>,
  alongside: Array<Promise<unknown>>,
  lost: unknown
): Promise<SaveResult> {
  const commands = [write, ...alongside]
  if (replicas !== undefined) commands.push(client.wait(replicas.count, replicas.timeout))
  const replies = await unavailableOnError(Promise.all(commands))
  if (replies[0] === lost) return 'lost'
  if (replicas !== undefined) {
    const acknowledged = replies[replies.length - 1] as number
    if (acknowledged < replicas.count) throw new FST_RS_STORE_UNAVAILABLE(`${acknowledged} of ${replicas.count} replicas acknowledged the save`)
  }
  return 'saved'
}
