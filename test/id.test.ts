import t from 'tap'
import { generateId, isValidId } from '../lib/id.js'

t.test('ids are 43 base64url characters, distinct across many pool refills', async (t) => {
  const ids = Array.from({ length: 1000 }, generateId)
  t.equal(new Set(ids).size, 1000)
  t.ok(ids.every(isValidId))
  t.ok(ids.every((id) => Buffer.from(id, 'base64url').length === 32), '256 bits each')
})

t.test('the id format check', async (t) => {
  t.notOk(isValidId('too-short'))
  t.notOk(isValidId('A'.repeat(42) + '='))
  t.notOk(isValidId('A'.repeat(44)))
  t.ok(isValidId('A'.repeat(43)))
})
