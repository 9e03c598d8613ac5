import { setTimeout as sleep } from 'node:timers/promises'

export interface WaitOptions {
  /** What is awaited, for the timeout message. */
  what: string
  timeout?: number
  interval?: number
}

/**
 * Polls `check` until it returns a value other than `undefined` or `false`, or throws after
 * `timeout` ms with the last error seen (Redis topologies settle asynchronously).
 */
export async function waitFor<T> (check: () => Promise<T | undefined | false>, opts: WaitOptions): Promise<T> {
  const { what, timeout = 15_000, interval = 100 } = opts
  const deadline = Date.now() + timeout
  let lastError: unknown
  for (;;) {
    try {
      const value = await check()
      if (value !== undefined && value !== false) return value
      lastError = undefined
    } catch (err) {
      lastError = err
    }
    if (Date.now() > deadline) {
      const cause = lastError instanceof Error ? `: ${lastError.message}` : ''
      throw new Error(`timed out after ${timeout} ms waiting for ${what}${cause}`, { cause: lastError })
    }
    await sleep(interval)
  }
}
