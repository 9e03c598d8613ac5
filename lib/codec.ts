import { FST_RS_DECODE_FAILED, FST_RS_SESSION_TOO_LARGE } from './errors.js'

export type SessionRecordData = Record<string, unknown>

export interface CodecOptions {
  encode: (data: SessionRecordData) => string
  decode: (payload: string) => SessionRecordData
  maxSize: number
}

/** Turns session data into stored text and back, and refuses records above `maxSize`. */
export class Codec {
  readonly #options: CodecOptions

  constructor (options: CodecOptions) {
    this.#options = options
  }

  encode (data: SessionRecordData): string {
    return this.#options.encode(data)
  }

  /** Throws FST_RS_SESSION_TOO_LARGE when the bytes about to be stored exceed `maxSize`. */
  checkSize (stored: string): void {
    // a UTF-8 string takes at most 3 bytes per UTF-16 unit: skip the byte count when it cannot be exceeded
    if (stored.length * 3 <= this.#options.maxSize) return
    const size = Buffer.byteLength(stored)
    if (size > this.#options.maxSize) throw new FST_RS_SESSION_TOO_LARGE(size, this.#options.maxSize)
  }

  /** Throws FST_RS_DECODE_FAILED unless the payload decodes to a plain object. */
  decode (payload: string): SessionRecordData {
    let data: unknown
    try {
      data = this.#options.decode(payload)
    } catch (err) {
      throw new FST_RS_DECODE_FAILED((err as Error).message, { cause: err })
    }
    if (typeof data !== 'object' || data === null || Array.isArray(data)) {
      throw new FST_RS_DECODE_FAILED('the record is not an object')
    }
    return data as SessionRecordData
  }
}
