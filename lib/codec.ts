import { brotliCompressSync, brotliDecompressSync, constants, deflateSync, gunzipSync, gzipSync, inflateSync } from 'node:zlib'
import { FST_RS_DECODE_FAILED, FST_RS_SESSION_TOO_LARGE } from './errors.js'

export type SessionRecordData = Record<string, unknown>

/** What a store writes or reads: text, or bytes once compression is on. */
export type Stored = string | Buffer

export type CompressionAlgorithm = 'deflate' | 'gzip' | 'brotli'

export interface Compression {
  /** encoded payloads of fewer bytes are stored as they are */
  threshold: number
  algorithm: CompressionAlgorithm
}

export interface CodecOptions {
  encode: (data: SessionRecordData) => string
  decode: (payload: string) => SessionRecordData
  maxSize: number
  compress?: Compression
}

interface Algorithm {
  tag: number
  compress: (bytes: Buffer) => Buffer
  /** throws once the output would exceed `maxOutputLength` bytes */
  decompress: (bytes: Buffer, maxOutputLength: number) => Buffer
}

// Sessions are written on the request path: brotli's default quality (11) costs milliseconds, 5 a fraction.
const BROTLI_QUALITY = { params: { [constants.BROTLI_PARAM_QUALITY]: 5 } }

const ALGORITHMS: Record<CompressionAlgorithm, Algorithm> = {
  deflate: { tag: 0x64, compress: (bytes) => deflateSync(bytes), decompress: (bytes, maxOutputLength) => inflateSync(bytes, { maxOutputLength }) },
  gzip: { tag: 0x67, compress: (bytes) => gzipSync(bytes), decompress: (bytes, maxOutputLength) => gunzipSync(bytes, { maxOutputLength }) },
  brotli: { tag: 0x62, compress: (bytes) => brotliCompressSync(bytes, BROTLI_QUALITY), decompress: (bytes, maxOutputLength) => brotliDecompressSync(bytes, { maxOutputLength }) }
}
const BY_TAG = new Map(Object.values(ALGORITHMS).map((algorithm) => [algorithm.tag, algorithm]))

// JSON spends two characters per level: a shorter payload nests under 2048 levels, which
// JSON.stringify takes with room to spare (it overflows Node's default stack at about 4000)
const SHALLOW = 4096

/**
 * Bytes a compressed session may inflate to, unless `maxSize` is larger: a bound against
 * decompression bombs that stays far above what sessions compress from (deflate shrinks at most
 * about 1000 times, JSON sessions 3 to 20 times), so `maxSize` alone decides what can be stored.
 */
export const INFLATE_LIMIT = 16 * 1024 * 1024

// 0xFF never occurs in UTF-8 text, so a payload starting with it cannot be a plain one; the next byte names the algorithm
const COMPRESSED = 0xff

/**
 * Turns session data into stored text or bytes and back: the encode/decode hooks, compression,
 * the `maxSize` limit on what is stored, and `maxInflated` on what it inflates to.
 */
export class Codec {
  /** Stored payloads may be bytes (compression is on): stores must read them as Buffers. */
  readonly binary: boolean
  /** bytes: the most a stored session inflates to, and so the most a compressed one may encode to */
  readonly maxInflated: number
  readonly #options: CodecOptions
  readonly #algorithm: Algorithm | undefined

  constructor (options: CodecOptions) {
    this.#options = options
    this.#algorithm = options.compress === undefined ? undefined : ALGORITHMS[options.compress.algorithm]
    this.binary = this.#algorithm !== undefined
    this.maxInflated = Math.max(options.maxSize, INFLATE_LIMIT)
  }

  encode (data: SessionRecordData): string {
    return this.#options.encode(data)
  }

  /** Throws FST_RS_DECODE_FAILED unless the payload decodes to a plain object. */
  decode (payload: string): SessionRecordData {
    const data = this.decodeValue(payload)
    if (typeof data !== 'object' || data === null || Array.isArray(data)) {
      throw new FST_RS_DECODE_FAILED('the record is not an object')
    }
    return data as SessionRecordData
  }

  /** One value on its own (hash layout); undefined for what JSON leaves out (undefined, functions). */
  encodeValue (value: unknown): string | undefined {
    return this.#options.encode(value as SessionRecordData)
  }

  /** Throws FST_RS_DECODE_FAILED when the hook does, or when what it returns cannot be encoded again. */
  decodeValue (payload: string): unknown {
    try {
      const value = this.#options.decode(payload)
      // JSON.parse takes any depth but JSON.stringify overflows the stack: data nested that deep
      // would fail every request. Only a long payload can nest that deep, so short ones skip the check.
      if (payload.length >= SHALLOW) this.#options.encode(value as SessionRecordData)
      return value
    } catch (err) {
      throw new FST_RS_DECODE_FAILED((err as Error).message, { cause: err })
    }
  }

  /** What to store for an encoded payload: the text, or marked compressed bytes from `threshold` bytes on. */
  pack (payload: string): Stored {
    if (this.#algorithm === undefined) return payload
    const bytes = Buffer.from(payload)
    if (bytes.length < (this.#options.compress as Compression).threshold) return payload
    return Buffer.concat([Buffer.of(COMPRESSED, this.#algorithm.tag), this.#algorithm.compress(bytes)])
  }

  /**
   * The encoded payload back from what `pack` stored; plain and compressed records both unpack.
   * Compressed bytes inflate to at most `limit` bytes (default `maxInflated`, which no saved
   * session exceeds), so a few stored bytes cannot become a huge allocation.
   */
  unpack (stored: Stored, limit = this.maxInflated): string {
    if (typeof stored === 'string') return stored
    if (stored[0] !== COMPRESSED) return stored.toString()
    const algorithm = BY_TAG.get(stored[1])
    if (algorithm === undefined) throw new FST_RS_DECODE_FAILED('the record is compressed with an unknown algorithm')
    try {
      // a record's other values may have used up the limit, and zlib takes none below 1
      return algorithm.decompress(stored.subarray(2), Math.max(limit, 1)).toString()
    } catch (err) {
      throw new FST_RS_DECODE_FAILED((err as Error).message, { cause: err })
    }
  }

  /**
   * With compression, throws FST_RS_SESSION_TOO_LARGE when the encoded payloads (together: the
   * hash layout's values) exceed `maxInflated`, however small they compress: `unpack` inflates no
   * more. Without, the stored bytes contain them and `checkSize` suffices.
   */
  checkEncodedSize (payloads: string | readonly string[]): void {
    if (!this.binary) return
    const size = byteSize(payloads, this.maxInflated)
    if (size > this.maxInflated) throw new FST_RS_SESSION_TOO_LARGE(size, `the ${this.maxInflated} bytes a stored session may inflate to`)
  }

  /** Throws FST_RS_SESSION_TOO_LARGE when the bytes about to be stored exceed `maxSize`. */
  checkSize (stored: Stored | readonly Stored[]): void {
    const { maxSize } = this.#options
    const size = byteSize(stored, maxSize)
    if (size > maxSize) throw new FST_RS_SESSION_TOO_LARGE(size, `maxSize (${maxSize}); keep less in the session, or raise maxSize`)
  }
}

/** The bytes of `stored`, or a bound at or below `limit` when that is all the caller needs to know. */
function byteSize (stored: Stored | readonly Stored[], limit: number): number {
  const parts = typeof stored === 'string' || Buffer.isBuffer(stored) ? [stored] : stored
  // a UTF-8 string takes at most 3 bytes per UTF-16 unit: skip the byte count when it cannot be exceeded
  let bound = 0
  for (const part of parts) bound += typeof part === 'string' ? part.length * 3 : part.length
  if (bound <= limit) return bound
  let size = 0
  for (const part of parts) size += typeof part === 'string' ? Buffer.byteLength(part) : part.length
  return size
}
