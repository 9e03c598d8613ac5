import { randomBytes } from 'node:crypto'

const ID_PATTERN = /^[A-Za-z0-9_-]{43}$/

/** 256 random bits as 43 base64url characters. */
export function generateId (): string {
  return randomBytes(32).toString('base64url')
}

export function isValidId (id: string): boolean {
  return ID_PATTERN.test(id)
}
