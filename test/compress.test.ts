import t from 'tap'
import { randomBytes } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import type { Redis } from 'ioredis'
import { INFLATE_LIMIT } from '../lib/codec.js'
import { bucketKeys, bucketOf } from '../lib/stores/buckets.js'
import { buildApp, idOf, privateRedis, sessionCookie } from './helpers/app.js'

type Layout = 'string' | 'hash' | 'bucketed'
const LAYOUTS: Layout[] = ['string', 'hash', 'bucketed']
const PREFIX = 'sess:'

// a realistic payload that compresses well, plus random text so the compressed bytes cover every byte value
const cart = Array.from({ length: 30 }, (_, i) => ({ sku: `SKU-${1000 + i}`, name: 'Blue cotton shirt, size M', quantity: 1, price: 19.99 }))
const token = randomBytes(96).toString('base64')

function routes (app: FastifyInstance): void {
  app.get('/small', async (request) => {
    request.session.set('n', 1)
    return {}
  })
  app.get('/large', async (request) => {
    request.session.set('cart', cart)
    request.session.set('token', token)
    return {}
  })
  app.get('/noise', async (request) => {
    request.session.set('noise', randomBytes(3000).toString('base64'))
    return {}
  })
  app.get('/long-owner', async (request) => {
    request.session.set('n', 1)
    request.session.setOwner('o'.repeat(2000))
    return {}
  })
  app.get('/count', async (request) => {
    request.session.set('n', (request.session.get('n') as number | undefined ?? 0) + 1)
    return {}
  })
  app.get('/show', async (request) => ({ data: request.session.toJSON(), isNew: request.session.isNew }))
}

/** The stored bytes of the session's data: the record after its header, or the hash field's value. */
async function storedData (layout: Layout, admin: Redis, id: string, field: string): Promise<Buffer> {
  if (layout === 'hash') return await admin.hgetBuffer(PREFIX + id, field) as Buffer
  const record = layout === 'string'
    ? await admin.getBuffer(PREFIX + id)
    : await admin.hgetBuffer(bucketKeys(PREFIX, bucketOf(id, 65536)).hash, id)
  return (record as Buffer).subarray((record as Buffer).indexOf('|') + 1)
}

/** Replaces the stored data bytes, keeping the header. */
async function replaceData (layout: Layout, admin: Redis, id: string, field: string, bytes: Buffer): Promise<void> {
  if (layout === 'hash') {
    await admin.hset(PREFIX + id, field, bytes)
    return
  }
  const record = layout === 'string' ? await admin.getBuffer(PREFIX + id) as Buffer : await admin.hgetBuffer(bucketKeys(PREFIX, bucketOf(id, 65536)).hash, id) as Buffer
  const value = Buffer.concat([record.subarray(0, record.indexOf('|') + 1), bytes])
  if (layout === 'string') await admin.set(PREFIX + id, value)
  else await admin.hset(bucketKeys(PREFIX, bucketOf(id, 65536)).hash, id, value)
}

const TAGS = { deflate: 'd', gzip: 'g', brotli: 'b' } as const

for (const layout of LAYOUTS) {
  t.test(`layout: ${layout}`, async (t) => {
    const shared = await privateRedis(t)
    const { admin } = shared
    // the hash layout compresses each value on its own: the cart, not the whole session
    const field = 'cart'

    for (const algorithm of ['deflate', 'gzip', 'brotli'] as const) {
      t.test(`${algorithm}: large payloads are stored compressed and marked, small ones stay plain`, async (t) => {
        const { request } = await buildApp(t, { layout, compress: { algorithm, threshold: 200 } }, routes, {}, shared)
        const cookie = sessionCookie(await request('/large')) as string
        const bytes = await storedData(layout, admin, idOf(cookie), field)
        t.equal(bytes[0], 0xff, 'marked compressed')
        t.equal(String.fromCharCode(bytes[1]), TAGS[algorithm], 'with its algorithm')
        t.ok(bytes.length < JSON.stringify(cart).length / 3, `${bytes.length} bytes stored`)
        t.same((await request('/show', cookie)).json(), { data: { cart, token }, isNew: false }, 'binary survives the round trip')
        await request('/count', cookie)
        t.same((await request('/show', cookie)).json().data, { cart, token, n: 1 })

        const small = sessionCookie(await request('/small')) as string
        t.equal((await storedData(layout, admin, idOf(small), 'n')).toString(), layout === 'hash' ? '1' : '{"n":1}', 'below the threshold: plain')
        t.same((await request('/show', small)).json().data, { n: 1 })
      })
    }

    t.test('plain records written without compression still decode once it is on, and records of any algorithm decode', async (t) => {
      const plain = await buildApp(t, { layout }, routes, {}, shared)
      const gzip = await buildApp(t, { layout, compress: { algorithm: 'gzip', threshold: 0 } }, routes, {}, shared)
      const brotli = await buildApp(t, { layout, compress: { algorithm: 'brotli' } }, routes, {}, shared)
      const old = sessionCookie(await plain.request('/large')) as string
      t.same((await brotli.request('/show', old)).json().data, { cart, token })
      const zipped = sessionCookie(await gzip.request('/large')) as string
      t.same((await brotli.request('/show', zipped)).json().data, { cart, token })
    })

    t.test('maxSize bounds the stored bytes: a session larger than maxSize that compresses below it is stored (issue 11, point 2)', async (t) => {
      const encoded = Buffer.byteLength(JSON.stringify({ cart, token }))
      const fits = await buildApp(t, { layout, maxSize: Math.ceil(encoded / 2), compress: {} }, routes, {}, shared)
      const response = await fits.request('/large')
      t.equal(response.statusCode, 200, `${encoded} bytes encoded, maxSize ${Math.ceil(encoded / 2)}`)
      const cookie = sessionCookie(response) as string
      t.ok((await storedData(layout, admin, idOf(cookie), field)).length < encoded / 3, 'stored compressed')
      t.same((await fits.request('/show', cookie)).json().data, { cart, token }, 'and reads back')
      // random text does not compress below maxSize; nor do the plain bytes without compression
      const tight = await buildApp(t, { layout, maxSize: 1500, compress: {} }, routes, {}, shared)
      const plain = await buildApp(t, { layout, maxSize: 1500 }, routes, {}, shared)
      // the stored bytes count too: a long owner in the header beside a small session
      const header = await buildApp(t, { layout, maxSize: 1500, compress: { threshold: 0 } }, routes, {}, shared)
      for (const [setup, url] of [[tight, '/noise'], [plain, '/large'], [header, '/long-owner']] as const) {
        const refused = await setup.request(url)
        t.equal(refused.statusCode, 500, `${url} ${setup === plain ? 'uncompressed' : 'compressed'}`)
        t.equal(refused.json().code, 'FST_RS_SESSION_TOO_LARGE')
        t.match(refused.json().message, /more than maxSize \(1500\); keep less in the session, or raise maxSize/)
      }
    })

    t.test(`a session that would inflate beyond ${INFLATE_LIMIT} bytes is refused, however small it compresses`, async (t) => {
      const { request } = await buildApp(t, { layout, compress: {} }, (app) => {
        app.get('/huge', async (request) => {
          request.session.set('a', 'a'.repeat(INFLATE_LIMIT / 2))
          request.session.set('b', 'b'.repeat(INFLATE_LIMIT / 2))
          return {}
        })
      }, {}, shared)
      const refused = await request('/huge')
      t.equal(refused.json().code, 'FST_RS_SESSION_TOO_LARGE')
      t.match(refused.json().message, `more than the ${INFLATE_LIMIT} bytes a stored session may inflate to`)
      t.equal(sessionCookie(refused), undefined, 'nothing stored')
    })

    t.test('LRU mode reads compressed records too', async (t) => {
      const { request } = await buildApp(t, { layout, compress: {}, redisTtl: false }, routes, {}, shared)
      const cookie = sessionCookie(await request('/large')) as string
      t.same((await request('/show', cookie)).json(), { data: { cart, token }, isNew: false })
    })

    t.test('damaged compressed data is a 500 FST_RS_DECODE_FAILED', async (t) => {
      const { request } = await buildApp(t, { layout, compress: {} }, routes, {}, shared)
      for (const bytes of [Buffer.from([0xff, 0x78, 1, 2, 3]), Buffer.from([0xff, 0x64, 1, 2, 3])]) {
        const cookie = sessionCookie(await request('/large')) as string
        await replaceData(layout, admin, idOf(cookie), field, bytes)
        const response = await request('/show', cookie)
        t.equal(response.statusCode, 500, bytes[1] === 0x78 ? 'unknown algorithm' : 'corrupt deflate stream')
        t.equal(response.json().code, 'FST_RS_DECODE_FAILED')
      }
    })
  })
}

t.test('compress options are checked at register', async (t) => {
  const shared = await privateRedis(t)
  await t.rejects(buildApp(t, { compress: { algorithm: 'lz4' as 'gzip', threshold: -1 } }, routes, {}, shared), {
    code: 'FST_RS_INVALID_OPTIONS',
    message: /\/compress\/threshold .*; \/compress\/algorithm /
  })
  await t.rejects(buildApp(t, { compress: true as unknown as false }, routes, {}, shared), { code: 'FST_RS_INVALID_OPTIONS', message: /\/compress / })
  const off = await buildApp(t, { compress: false }, routes, {}, shared)
  const cookie = sessionCookie(await off.request('/large')) as string
  t.match(await shared.admin.get(PREFIX + idOf(cookie)), /\|\{"cart":/, 'false: stored plain')
})
