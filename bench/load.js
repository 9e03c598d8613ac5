import autocannon from 'autocannon'

export const CONNECTIONS = 10

/**
 * Drives `url` with autocannon for `duration` seconds or `amount` requests, sending `cookie`
 * when given. Fails when any request errs or answers non-2xx: a broken variant must not look fast.
 */
export async function load (url, { cookie, duration, amount, connections = CONNECTIONS }) {
  const result = await autocannon({
    url,
    connections,
    // autocannon rejects an undefined duration: give exactly one of the two
    ...(amount === undefined ? { duration } : { amount }),
    headers: cookie === undefined ? {} : { cookie }
  })
  const failed = result.errors + result.timeouts + result.non2xx
  if (failed > 0) throw new Error(`${url}: ${failed} of ${result.requests.total} requests failed`)
  return {
    requests: result.requests.total,
    perSecond: result.requests.total / result.duration,
    p50: result.latency.p50,
    p99: result.latency.p99
  }
}
