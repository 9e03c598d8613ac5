import { randomBytes } from 'node:crypto'

const ID_PATTERN = /^[A-Za-z0-9_-]{43}$/
const ID_BYTES = 32
// one randomBytes call serves 128 ids, as Node's randomUUID pools its entropy
const POOL_SIZE = ID_BYTES * 128
let pool = Buffer.alloc(0)
let offset = 0

/** 256 random bits as 43 base64url characters. */
export function generateId (): string {
  if (offset === pool.length) {
    pool = randomBytes(POOL_SIZE)
    offset = 0
  }
  const id = pool.toString('base64url', offset, offset + ID_BYTES)
  offset += ID_BYTES
  return id
}

export function isValidId (id: string): boolean {
  return ID_PATTERN.test(id)
}
