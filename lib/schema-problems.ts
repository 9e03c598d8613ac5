import type { TSchema } from 'typebox'
import { Value } from 'typebox/value'

/**
 * Keywords a schema may carry beside JSON Schema's, read only by these messages: `description`
 * says in words what a valid string is (instead of its pattern), `unit` is the unit of a number,
 * `hint` says how to get a valid value.
 */
export interface ProblemKeywords {
  description?: string
  unit?: 'seconds' | 'milliseconds'
  hint?: string
}

/** The part of a TypeBox schema these messages read. */
interface Schema extends ProblemKeywords {
  type?: string
  const?: unknown
  anyOf?: Schema[]
  properties?: Record<string, Schema>
  required?: string[]
  additionalProperties?: boolean
  items?: Schema
  minimum?: number
  exclusiveMinimum?: number
  maximum?: number
  minLength?: number
  minItems?: number
  pattern?: string
}

/**
 * What is wrong with `value`, one message per bad path. Each says what a valid value is, what
 * was given (only where it cannot be a secret: values of schemas that accept no free string),
 * and what was probably meant: an allowed value differing in case or by a typo, a near option
 * name, a number written as a string or a duration, seconds given in milliseconds.
 * @example
 * schemaProblems(Type.Object({ sameSite: Type.Union([Type.Literal('lax'), Type.Literal(false)]) }), { sameSite: 'Lax' })
 * // ["/sameSite must be 'lax' or false (got 'Lax'): did you mean 'lax'?"]
 */
export function schemaProblems (schema: TSchema, value: unknown, path = ''): string[] {
  return problemsAt(schema as Schema, value, path, schema as Schema)
}

function problemsAt (schema: Schema, value: unknown, path: string, root: Schema): string[] {
  if (Value.Check(schema as TSchema, value)) return []
  // a union is explained by its member of the value's kind, when there is exactly one
  const member = schema.anyOf === undefined ? schema : fittingMember(schema.anyOf, value)
  let problems: string[] = []
  if (member?.type === 'object' && isRecord(value)) problems = objectProblems(member, value, path, root)
  else if (member?.type === 'array' && Array.isArray(value)) problems = arrayProblems(member, value, path, root)
  else if (member !== undefined && member !== schema) problems = problemsAt(member, value, path, root)
  // keywords the walk does not know still make the value invalid
  return problems.length > 0 ? problems : [valueProblem(schema, value, path)]
}

function objectProblems (schema: Schema, value: Record<string, unknown>, path: string, root: Schema): string[] {
  // TypeBox gives every object schema its properties and every array schema its items
  const properties = schema.properties as Record<string, Schema>
  const problems: string[] = []
  // in the schema's order, so the same mistakes read the same however the options were written
  for (const [key, property] of Object.entries(properties)) {
    if (value[key] !== undefined) problems.push(...problemsAt(property, value[key], `${path}/${key}`, root))
    else if (schema.required?.includes(key) === true) problems.push(`${path}/${key} is required` + hintOf(property))
  }
  if (schema.additionalProperties === false) {
    for (const key of Object.keys(value)) {
      if (!Object.hasOwn(properties, key)) problems.push(unknownKey(Object.keys(properties), key, path, root))
    }
  }
  return problems
}

function arrayProblems (schema: Schema, value: unknown[], path: string, root: Schema): string[] {
  const minItems = schema.minItems ?? 0
  if (value.length < minItems) return [tooShort(path, schema, minItems, 'item', value.length)]
  return value.flatMap((item, index) => problemsAt(schema.items as Schema, item, `${path}/${index}`, root))
}

function unknownKey (siblings: string[], key: string, path: string, root: Schema): string {
  const near = closest(siblings, key)
  const suggestion = near === undefined ? pathElsewhere(root, key, '') : `${path}/${near}`
  return `${path}/${key} is not a known option` + (suggestion === undefined ? '' : ` (did you mean ${suggestion}?)`)
}

/** The path of a property called `key` (in any case) anywhere in `schema`: an option given at the wrong level. */
function pathElsewhere (schema: Schema, key: string, path: string): string | undefined {
  for (const member of schema.anyOf ?? []) {
    const found = pathElsewhere(member, key, path)
    if (found !== undefined) return found
  }
  for (const [name, property] of Object.entries(schema.properties ?? {})) {
    if (name.toLowerCase() === key.toLowerCase()) return `${path}/${name}`
    const found = pathElsewhere(property, key, `${path}/${name}`)
    if (found !== undefined) return found
  }
  return undefined
}

/** The message for a value that is wrong as a whole: of another kind, or out of bounds. */
function valueProblem (schema: Schema, value: unknown, path: string): string {
  const intent = intended(schema, value)
  const choices = choicesOf(schema)
  if (choices !== undefined) return message(path, schema, 'must be ' + listed(choices), show(value, true), intent)
  const echo = !accepts(schema, 'string')
  if (schema.anyOf !== undefined || !ofKind(schema, value)) return message(path, schema, 'must be ' + expected(schema), show(value, echo), intent)
  if (typeof value === 'number') {
    const unitMs = unitMsOf(schema)
    const amount = (limit: number): string => unitMs !== undefined && limit * unitMs >= 60_000 ? `${limit} (${duration(limit * unitMs)})` : String(limit)
    if (schema.type === 'integer' && !Number.isInteger(value)) return message(path, schema, 'must be a whole number', show(value, echo), intent)
    if (schema.minimum !== undefined && value < schema.minimum) return message(path, schema, `must be at least ${schema.minimum}`, show(value, echo), intent)
    if (schema.exclusiveMinimum !== undefined && value <= schema.exclusiveMinimum) return message(path, schema, `must be more than ${schema.exclusiveMinimum}`, show(value, echo), intent)
    if (schema.maximum !== undefined && value > schema.maximum) return message(path, schema, `must be at most ${amount(schema.maximum)}`, show(value, echo), intent)
  }
  if (typeof value === 'string') {
    if (schema.minLength !== undefined && value.length < schema.minLength) return tooShort(path, schema, schema.minLength, 'character', value.length)
    if (schema.pattern !== undefined && !new RegExp(schema.pattern).test(value)) return message(path, schema, 'must be ' + (schema.description ?? `a string matching /${schema.pattern}/`))
  }
  // refinements (and any keyword not read above) bring their own message
  return message(path, schema, Value.Errors(schema as TSchema, value)[0].message, show(value, echo))
}

function tooShort (path: string, schema: Schema, limit: number, noun: string, length: number): string {
  return limit === 1 ? message(path, schema, 'must not be empty') : message(path, schema, `must have at least ${counted(limit, noun)}`, String(length))
}

/**
 * `<path> [is in <unit> and] <problem> [(got <given>)][: did you mean <intent>?][: <hint>]`, with
 * no "; " of its own: that separates the problems in FST_RS_INVALID_OPTIONS.
 */
function message (path: string, schema: Schema, problem: string, given?: string, intent?: string): string {
  const unit = find(schema, (s) => s.unit)
  return path + ' ' + (unit === undefined ? '' : `is in ${unit} and `) + problem + (given === undefined ? '' : ` (got ${given})`) +
    (intent === undefined ? '' : `: did you mean ${intent}?`) + hintOf(schema)
}

function hintOf (schema: Schema): string {
  const hint = find(schema, (s) => s.hint)
  return hint === undefined ? '' : ': ' + hint
}

/** A keyword of the schema or, for a union, of its first member that has it. */
function find<T> (schema: Schema, keyword: (schema: Schema) => T | undefined): T | undefined {
  return keyword(schema) ?? schema.anyOf?.map((member) => keyword(member)).find((found) => found !== undefined)
}

/** The value the user probably meant, shown as it should be written, when that value is valid. */
function intended (schema: Schema, value: unknown): string | undefined {
  const choices = choicesOf(schema)
  if (typeof value === 'string' && choices !== undefined) {
    const near = closest(choices.map(String), value)
    return near === undefined ? undefined : show(choices[choices.map(String).indexOf(near)], true)
  }
  const unitMs = unitMsOf(schema)
  const candidate = typeof value === 'string' && accepts(schema, 'number')
    ? fromText(value, unitMs)
    : typeof value === 'number' && unitMs === 1000 && value % 1000 === 0 ? value / 1000 : undefined // seconds given in milliseconds
  if (candidate === undefined || !Value.Check(schema as TSchema, candidate)) return undefined
  return unitMs === undefined ? String(candidate) : `${candidate}, i.e. ${duration(Math.round(candidate * unitMs))}`
}

const TEXT_NUMBER = /^\s*(-?\d+(?:\.\d+)?)\s*(?:(ms|s|m|h|d)[a-z]*)?\s*$/i
const MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/** A number written as text ('6379'), or a duration ('20m', '5 s') converted to the schema's unit. */
function fromText (text: string, unitMs: number | undefined): number | undefined {
  const match = TEXT_NUMBER.exec(text)
  if (match === null) return undefined
  if (match[2] === undefined) return Number(match[1])
  return unitMs === undefined ? undefined : Number(match[1]) * MS[match[2].toLowerCase()] / unitMs
}

function unitMsOf (schema: Schema): number | undefined {
  const unit = find(schema, (s) => s.unit)
  return unit === undefined ? undefined : unit === 'seconds' ? 1000 : 1
}

const DURATIONS: Array<[string, number]> = [['day', 86_400_000], ['hour', 3_600_000], ['minute', 60_000], ['second', 1000], ['millisecond', 1]]

/** '20 minutes', '400 days': in the largest unit that divides `ms`. */
function duration (ms: number): string {
  // whole milliseconds: the last unit, 1, divides them
  const [name, size] = DURATIONS.find(([, size]) => ms % size === 0) as [string, number]
  return counted(ms / size, name)
}

function counted (count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`
}

/** The allowed values, when the schema is a boolean, a literal or a union of them. */
function choicesOf (schema: Schema): unknown[] | undefined {
  const members = schema.anyOf ?? [schema]
  if (!members.every((member) => 'const' in member || member.type === 'boolean')) return undefined
  const choices = members.flatMap((member) => 'const' in member ? [member.const] : [true, false])
  return [...new Set(choices)]
}

function listed (choices: unknown[]): string {
  const shown = choices.map((choice) => show(choice, true))
  return shown.length === 2 ? shown.join(' or ') : 'one of ' + shown.join(', ')
}

/** What a valid value is, in words. */
function expected (schema: Schema): string {
  if (schema.anyOf !== undefined) return schema.anyOf.map(expected).join(' or ')
  if ('const' in schema) return show(schema.const, true)
  if (schema.description !== undefined) return schema.description
  switch (schema.type) {
    case 'boolean': return 'a boolean'
    case 'integer': return 'a whole number'
    case 'number': return 'a number'
    case 'null': return 'null'
    case 'array': return 'an array'
    case 'object': return `an object { ${Object.keys(schema.properties as Record<string, Schema>).map((key) => schema.required?.includes(key) === true ? key : key + '?').join(', ')} }`
    default: return `a ${String(schema.type)}`
  }
}

function fittingMember (members: Schema[], value: unknown): Schema | undefined {
  const fitting = members.filter((member) => !('const' in member) && ofKind(member, value))
  return fitting.length === 1 ? fitting[0] : undefined
}

const KINDS: Record<string, (value: unknown) => boolean> = {
  string: (value) => typeof value === 'string',
  boolean: (value) => typeof value === 'boolean',
  number: (value) => typeof value === 'number',
  integer: (value) => typeof value === 'number',
  null: (value) => value === null,
  array: Array.isArray,
  object: isRecord
}

/** Whether the value is of the schema's JSON type (an untyped schema, such as a refinement, takes any). */
function ofKind (schema: Schema, value: unknown): boolean {
  return schema.type === undefined || KINDS[schema.type](value)
}

/** Whether the schema takes some value of this kind. */
function accepts (schema: Schema, kind: 'string' | 'number'): boolean {
  if (schema.anyOf !== undefined) return schema.anyOf.some((member) => accepts(member, kind))
  return schema.type === undefined || schema.type === kind || (kind === 'number' && schema.type === 'integer')
}

/** A given value for a message: verbatim when `echo`, else only its kind (it may be a secret). */
function show (value: unknown, echo: boolean): string {
  if (value === null || value === undefined) return String(value)
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'object') return 'an object'
  if (typeof value === 'function') return 'a function'
  if (!echo) return 'a ' + typeof value
  if (typeof value !== 'string') return String(value)
  const quoted = JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value)
  return `'${quoted.slice(1, -1).replaceAll("'", "\\'")}'`
}

/** The candidate equal to `given` but for case, else the one within two typos (for names of 4+ characters). */
function closest (candidates: string[], given: string): string | undefined {
  const lower = given.toLowerCase()
  const same = candidates.find((candidate) => candidate.toLowerCase() === lower)
  if (same !== undefined || lower.length < 4) return same
  let best: string | undefined
  let bestDistance = 3
  for (const candidate of candidates) {
    const distance = editDistance(lower, candidate.toLowerCase())
    if (distance < bestDistance) {
      best = candidate
      bestDistance = distance
    }
  }
  return best
}

/** Levenshtein distance. */
function editDistance (a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
    previous = current
  }
  return previous[b.length]
}

function isRecord (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
