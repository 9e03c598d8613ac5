import t from 'tap'
import Type from 'typebox'
import { schemaProblems } from '../lib/schema-problems.js'

// The message builder is generic; test/options.test.ts pins it on the real options. These cover
// schema shapes the options do not use today, so a new option gets sensible messages too.

t.test('a keyword the walk does not read still reports the value, with its own message', async (t) => {
  const schema = Type.Object({ tags: Type.Object({}, { minProperties: 1 }) })
  t.same(schemaProblems(schema, { tags: {} }), ['/tags must not have fewer than 1 properties (got an object)'])
})

t.test('arrays: each bad item by index, and a minimum length above one', async (t) => {
  t.same(schemaProblems(Type.Array(Type.Integer()), [1, 'x', 3], '/list'), ["/list/1 must be a whole number (got 'x')"])
  t.same(schemaProblems(Type.Array(Type.Integer(), { minItems: 2 }), [1], '/list'), ['/list must have at least 2 items (got 1)'])
})

t.test('a pattern without a description is shown as the pattern', async (t) => {
  t.same(schemaProblems(Type.Object({ code: Type.String({ pattern: '^[A-Z]{3}$' }) }), { code: 'abc' }), ['/code must be a string matching /^[A-Z]{3}$/'])
})

t.test('an object that allows other keys does not report them', async (t) => {
  t.same(schemaProblems(Type.Object({ n: Type.Integer() }), { n: 1.5, other: true }), ['/n must be a whole number (got 1.5)'])
})
