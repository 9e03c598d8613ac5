// named, so the declarations say `import('@fastify/error').FastifyErrorConstructor`: the default
// import's `createError.` namespace does not resolve under moduleResolution "bundler" (TS2503)
import { createError } from '@fastify/error'

type Detail = [detail: string, options?: { cause: unknown }]

/** Register was given options that do not match the schema; the message names every bad path. */
export const FST_RS_INVALID_OPTIONS = createError<'FST_RS_INVALID_OPTIONS', 500, Detail>('FST_RS_INVALID_OPTIONS', 'Invalid fastify-redis-sessions options: %s', 500, TypeError)

/** Redis did not answer in time or the connection is down; the request gets a 503. */
export const FST_RS_STORE_UNAVAILABLE = createError<'FST_RS_STORE_UNAVAILABLE', 503, Detail>('FST_RS_STORE_UNAVAILABLE', 'Session store unavailable: %s', 503)

/** Redis refused the plugin's credentials or TLS handshake while connecting; register fails. */
export const FST_RS_CONNECTION_REJECTED = createError<'FST_RS_CONNECTION_REJECTED', 500, Detail>('FST_RS_CONNECTION_REJECTED', 'Redis rejected the connection: %s', 500)

/** A stored session could not be decoded (and `deserializationFailsNew` is off). */
export const FST_RS_DECODE_FAILED = createError<'FST_RS_DECODE_FAILED', 500, Detail>('FST_RS_DECODE_FAILED', 'Stored session could not be decoded: %s', 500)

/** The session would be stored in more than `maxSize` bytes (or inflate beyond its limit); nothing was written. */
export const FST_RS_SESSION_TOO_LARGE = createError<'FST_RS_SESSION_TOO_LARGE', 500, [size: number, limit: string]>('FST_RS_SESSION_TOO_LARGE', 'Session is %d bytes, more than %s. Nothing was written', 500)

/** `setOwner(owner, info)` was given `info` that is no plain object, or larger than the limit as JSON. A TypeError. */
export const FST_RS_INVALID_INFO = createError<'FST_RS_INVALID_INFO', 500, Detail>('FST_RS_INVALID_INFO', 'Invalid session info: %s', 500, TypeError)
/** A call the configured store cannot serve (the owner index with Memcached). */
export const FST_RS_UNSUPPORTED = createError<'FST_RS_UNSUPPORTED', 500, Detail>('FST_RS_UNSUPPORTED', 'Not supported by this session store: %s', 500)

/**
 * Every error this plugin creates, by code, for `instanceof` checks.
 * @example
 * if (err instanceof errorCodes.FST_RS_STORE_UNAVAILABLE) reply.header('retry-after', '1')
 */
export const errorCodes = {
  FST_RS_INVALID_OPTIONS,
  FST_RS_STORE_UNAVAILABLE,
  FST_RS_CONNECTION_REJECTED,
  FST_RS_DECODE_FAILED,
  FST_RS_SESSION_TOO_LARGE,
  FST_RS_INVALID_INFO,
  FST_RS_UNSUPPORTED
}
