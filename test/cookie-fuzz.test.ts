import t from 'tap'
import fc from 'fast-check'
import { once } from 'node:events'
import { connect } from 'node:net'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { CookieSigner } from '../lib/cookie.js'
import { commandDelta } from './helpers/index.js'
import { buildApp, recordTraffic, sessionCookie, setCookies } from './helpers/app.js'

// Property-based tests of the Cookie header against a real app on a private Redis. Invariants:
// never a 500, no Redis command for a cookie that is not validly signed, never a session other
// than the one the first `session` cookie names with a valid signature, and nothing of a bad
// cookie ever comes back in a Set-Cookie.

const NEW = 'the-current-secret-that-signs-0123456789abcdef'
const OLD = 'the-previous-secret-still-verifies-9876543210'
const FOREIGN = 'a-secret-this-app-has-never-heard-of-00000000'
const RUNS = 200

function routes (app: FastifyInstance): void {
  app.get('/read', async (request) => ({ owner: request.session.get('owner') ?? null, isNew: request.session.isNew }))
  app.get('/write', async (request) => {
    const hits = (request.session.get('hits') as number | undefined ?? 0) + 1
    request.session.set('hits', hits)
    return { owner: request.session.get('owner') ?? null, isNew: request.session.isNew }
  })
  app.get<{ Params: { owner: string } }>('/login/:owner', async (request) => {
    request.session.set('owner', request.params.owner)
    return {}
  })
}

const setup = await buildApp(t, { secret: [NEW, OLD] }, routes)
const traffic = recordTraffic(setup.app.sessionStore.client)
const signer = new CookieSigner([NEW])
const oldSigner = new CookieSigner([OLD])
const foreignSigner = new CookieSigner([FOREIGN])

const login = async (owner: string): Promise<string> =>
  (sessionCookie(await setup.request('/login/' + owner)) as string).slice('session='.length)
const valueA = await login('A')
const valueB = await login('B')
const idA = valueA.slice(0, 43)
const idB = valueB.slice(0, 43)
const sigA = valueA.slice(44)
const sigB = valueB.slice(44)
const oldA = oldSigner.sign(idA)
/** The values that name session A with a valid signature: the current and the previous secret. */
const VALID_A = new Map([[valueA, 'current'], [oldA, 'old']])

/** What the plugin must see in a header: the first `session` pair's trimmed value (RFC 6265: the first wins). */
interface Part { name: string, value: string | undefined }
function expectedValue (parts: Part[]): string | undefined {
  const ours = parts.find((part) => part.value !== undefined && part.name.trim() === 'session')
  return ours?.value?.trim()
}

const flip = (s: string, i: number, c: string): string => s.slice(0, i) + c + s.slice(i + 1)
const noSemicolon = (s: string): string => s.replaceAll(';', '')

// hostile values, many of them made of B's id and signature: none may ever open session B
const hostileValue = fc.oneof(
  fc.constantFrom(
    idB, sigB, idB + '.', '.' + sigB, idB + '.' + sigA, idA + '.' + sigB, foreignSigner.sign(idB), foreignSigner.sign(idA),
    oldSigner.sign(idB).slice(0, -1), valueB + '.' + sigB, sigB + '.' + idB, `"${valueB}"`, `"${valueA}"`,
    valueB.replace('.', '%2E'), encodeURIComponent(valueA).replace('.', '%2e'), valueA.toLowerCase(), valueB.toUpperCase(),
    flip(valueA, 5, 'Α' /* Greek capital alpha */), flip(valueB, 10, 'Ｂ'), valueA.slice(0, 20) + '\u200b' + valueA.slice(20),
    valueA + '\u0000', '\u0000' + valueA, valueA.replace('.', '\u2024'), valueB + ',' + valueA, '', '=', '==' + valueA
  ),
  // truncated and extended valid cookies
  fc.tuple(fc.constantFrom(valueA, valueB, oldA), fc.integer({ min: 0, max: 86 })).map(([v, n]) => v.slice(0, n)),
  fc.tuple(fc.constantFrom(valueA, valueB, oldA), fc.string({ minLength: 1, maxLength: 8 })).map(([v, s]) => noSemicolon(v + s)).filter((v) => !VALID_A.has(v.trim())),
  // one character changed
  fc.tuple(fc.constantFrom(valueA, valueB, oldA), fc.nat({ max: 86 }), fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }))
    .map(([v, i, c]) => noSemicolon(flip(v, i, c))).filter((v) => !VALID_A.has(v.trim())),
  // oversized: a valid value padded to 8 KB
  fc.tuple(fc.constantFrom(valueA, valueB), fc.integer({ min: 1, max: 8192 })).map(([v, n]) => v + 'x'.repeat(n)),
  // random text: printable, unicode, control characters, quotes and '='
  fc.string({ unit: 'binary', maxLength: 120 }).map(noSemicolon),
  fc.string({ unit: fc.constantFrom('"', '=', ' ', '\t', '\\', ',', '.', 'A', '-', '_', '\u00a0', '\r', '\n'), maxLength: 60 }),
  fc.string({ unit: 'grapheme', maxLength: 40 }).map(noSemicolon)
)

const name = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom('session', ' session', 'session ', '\tsession', 'session\u00a0') },
  { weight: 3, arbitrary: fc.constantFrom('Session', 'SESSION', 'sessionx', 'xsession', 'sess', '"session"', 'session.sig', '', ' ', 'a', '__Host-session') },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 12 }).map((s) => s.replace(/[;=]/g, '')) }
)

const part: fc.Arbitrary<Part> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ name, value: hostileValue }) },
  // a bare flag without '='
  { weight: 1, arbitrary: fc.record({ name, value: fc.constant(undefined) }) },
  // a big unrelated cookie: headers of 8 KB and more
  { weight: 1, arbitrary: fc.record({ name: fc.constantFrom('big', 'tracking'), value: fc.integer({ min: 1000, max: 8192 }).map((n) => 'y'.repeat(n)) }) }
)

const whitespace = fc.constantFrom('', ' ', '  ', '\t', '\u00a0', '\n')
const separator = fc.constantFrom('; ', ';', ' ;  ', ';\t', ';;', '; ; ')

/** A header of hostile parts, with a valid cookie for A (current or old secret) at some place, or none. */
const header = fc.record({
  parts: fc.array(part, { maxLength: 6 }),
  a: fc.option(fc.record({
    value: fc.constantFrom(valueA, oldA),
    name: fc.constantFrom('session', ' session ', 'session\t'),
    before: whitespace,
    after: whitespace,
    at: fc.nat()
  }), { freq: 2 }),
  separators: fc.array(separator, { minLength: 8, maxLength: 8 }),
  write: fc.boolean()
}).map(({ parts, a, separators, write }) => {
  const all = [...parts]
  if (a !== null) all.splice(a.at % (all.length + 1), 0, { name: a.name, value: a.before + a.value + a.after })
  const text = all.map((p, i) => (i === 0 ? '' : separators[i % separators.length]) + (p.value === undefined ? p.name : p.name + '=' + p.value)).join('')
  return { text, expected: expectedValue(all), write }
})

/** Checks one request with `cookie`; returns what is wrong, or undefined. */
async function check (cookie: string, expected: string | undefined, write: boolean): Promise<string | undefined> {
  const stale = expected === undefined ? undefined : VALID_A.get(expected)
  traffic.reset()
  const response = await setup.request(write ? '/write' : '/read', cookie)
  if (response.statusCode !== 200) return `status ${response.statusCode}: ${response.body}`
  const body = response.json() as { owner: string | null, isNew: boolean }
  if (body.owner === 'B') return 'session B was opened'
  const lines = setCookies(response)
  if (stale === undefined) {
    if (body.owner !== null || body.isNew !== true) return `expected a new session, got ${JSON.stringify(body)}`
    const expectedCommands = write ? ['set'] : []
    if (traffic.commands.join() !== expectedCommands.join()) return `Redis commands ${JSON.stringify(traffic.commands)} for an invalid cookie`
    if (!write) return lines.length === 0 ? undefined : `Set-Cookie on a read: ${JSON.stringify(lines)}`
    if (lines.length !== 1) return `expected one Set-Cookie, got ${JSON.stringify(lines)}`
    const fresh = lines[0].slice('session='.length, lines[0].indexOf(';'))
    const verified = signer.verify(fresh)
    if (verified === null || verified.stale) return `Set-Cookie is not signed with the current secret: ${lines[0]}`
    if (verified.id === idA || verified.id === idB || cookie.includes(verified.id)) return `an id was adopted or echoed: ${lines[0]}`
    return undefined
  }
  if (body.owner !== 'A' || body.isNew) return `expected session A, got ${JSON.stringify(body)}`
  if (traffic.commands[0] !== 'getex') return `A was not loaded: ${JSON.stringify(traffic.commands)}`
  if (stale === 'current') return lines.length === 0 ? undefined : `unexpected Set-Cookie ${JSON.stringify(lines)}`
  // an old-secret signature is re-signed with the current secret, and nothing else is echoed
  if (lines.length !== 1 || !lines[0].startsWith('session=' + valueA + ';')) return `expected A re-signed, got ${JSON.stringify(lines)}`
  return undefined
}

t.test('structured headers: hostile parts, duplicates of our name, A somewhere or nowhere', async (t) => {
  let withA = 0
  await fc.assert(fc.asyncProperty(header, async ({ text, expected, write }) => {
    if (expected !== undefined && VALID_A.has(expected)) withA++
    const problem = await check(text, expected, write)
    if (problem !== undefined) throw new Error(problem)
  }), { numRuns: RUNS })
  t.ok(withA > RUNS / 10, `A was the cookie in ${withA} of ${RUNS} headers`)
  t.ok(RUNS - withA > RUNS / 10, 'and absent or shadowed in the others')
  t.same((await setup.request('/read', 'session=' + valueB)).json(), { owner: 'B', isNew: false }, 'B is still there, never reached by the hostile headers')
})

t.test('raw headers: random, unicode, control characters and 8 KB, never a Redis command', async (t) => {
  const raw = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 400 }),
    fc.string({ unit: 'binary', maxLength: 400 }).map((s) => 'session=' + s),
    fc.string({ unit: 'grapheme-composite', maxLength: 100 }).map((s) => `session=${s}; session=${s}`),
    fc.string({ unit: fc.constantFrom(...'session=;. "\t\\,\u0000\r\n\u007f\u00ff'), maxLength: 200 }),
    fc.tuple(fc.integer({ min: 8000, max: 8300 }), fc.constantFrom('x', '=', ';', ' ', 'é')).map(([n, c]) => 'session=' + c.repeat(n)),
    fc.tuple(fc.string({ unit: 'binary', maxLength: 40 }), fc.integer({ min: 0, max: 85 }))
      .map(([junk, cut]) => `session=${junk.replaceAll(';', '')}${valueA.slice(0, cut)}`)
  )
  const ran = await commandDelta(setup.admin, async () => {
    await fc.assert(fc.asyncProperty(raw, async (text) => {
      const problem = await check(text, expectedValue(text.split(';').map((pair) => {
        const eq = pair.indexOf('=')
        return eq === -1 ? { name: pair, value: undefined } : { name: pair.slice(0, eq), value: pair.slice(eq + 1) }
      })), false)
      if (problem !== undefined) throw new Error(problem)
    }), { numRuns: RUNS })
  })
  t.same(ran, {}, 'Redis ran no command for any of them')
})

t.test('a valid cookie of A anywhere after a hostile `session` pair is shadowed, never followed to B', async (t) => {
  const first = fc.oneof(hostileValue, fc.constantFrom(idB + '.' + sigA, foreignSigner.sign(idB)))
  await fc.assert(fc.asyncProperty(first, fc.boolean(), async (bad, write) => {
    const problem = await check(`session=${bad}; session=${valueA}`, bad.trim(), write)
    if (problem !== undefined) throw new Error(problem)
  }), { numRuns: 100 })
  t.pass()
})

t.test('through a real HTTP server: raw bytes in the Cookie header are never a 500', async (t) => {
  await setup.app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = setup.app.server.address() as AddressInfo
  const send = async (bytes: Buffer): Promise<string> => {
    const socket = connect(port, '127.0.0.1')
    await once(socket, 'connect')
    socket.end(Buffer.concat([Buffer.from('GET /read HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nCookie: '), bytes, Buffer.from('\r\n\r\n')]))
    const chunks: Buffer[] = []
    for await (const chunk of socket) chunks.push(chunk as Buffer)
    return Buffer.concat(chunks).toString('latin1')
  }
  // every byte but CR and LF, which would end the header; up to 20 KB (Node's limit is 16 KB)
  const headerByte = fc.integer({ min: 0, max: 255 }).filter((b) => b !== 10 && b !== 13)
  const bytes = fc.oneof(
    fc.array(headerByte, { maxLength: 300 }).map((list) => Buffer.from(list)),
    fc.tuple(fc.integer({ min: 8000, max: 20_000 }), headerByte).map(([n, b]) => Buffer.concat([Buffer.from('session='), Buffer.alloc(n, b)])),
    fc.array(headerByte, { maxLength: 60 }).map((list) => Buffer.concat([Buffer.from(list.filter((b) => b !== 59)), Buffer.from('; session=' + valueB.slice(0, 60))]))
  )
  const statuses = new Set<number>()
  await fc.assert(fc.asyncProperty(bytes, async (cookie) => {
    const response = await send(cookie)
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(response)?.[1])
    statuses.add(status)
    if (![200, 400, 431].includes(status)) throw new Error(`status ${status}`)
    if (status === 200 && !response.endsWith('{"owner":null,"isNew":true}')) throw new Error('not a new session: ' + response.slice(-80))
    if (/^set-cookie:/im.test(response)) throw new Error('Set-Cookie in ' + response)
  }), { numRuns: 60 })
  t.ok(statuses.has(200), `statuses seen: ${[...statuses].join(', ')}`)
  t.same((await setup.request('/read', 'session=' + valueA)).json(), { owner: 'A', isNew: false }, 'A is intact')
})
