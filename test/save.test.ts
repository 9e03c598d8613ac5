import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { buildApp, counterRoutes, idOf, privateRedis, sessionCookie } from './helpers/app.js'

function routes (app: FastifyInstance): void {
  counterRoutes(app)
  app.get('/fail', async (request) => {
    request.session.set('failed', true)
    throw Object.assign(new Error('boom'), { statusCode: 400 })
  })
  app.get('/big', async (request) => {
    request.session.set('blob', 'x'.repeat(2000))
    return {}
  })
}

t.test('the save happens in onSend, before the response leaves', async (t) => {
  const { request } = await buildApp(t, {}, routes)
  const cookie = sessionCookie(await request('/write'))
  for (let i = 2; i <= 5; i++) {
    t.same((await request('/write', cookie)).json(), { n: i }, 'each request sees what the previous one wrote')
  }
  t.same((await request('/read', cookie)).json(), { n: 5, isNew: false })
})

t.test('a save that fails turns the response into a 503', async (t) => {
  const { redis, admin } = await privateRedis(t)
  const setup = await buildApp(t, { commandTimeout: 300 }, (app) => {
    routes(app)
    app.get('/write-while-paused', async (request) => {
      request.session.set('n', 99)
      redis.pause()
      return { ok: true }
    })
  }, {}, { redis, admin })
  const cookie = sessionCookie(await setup.request('/write')) as string
  const started = Date.now()
  const response = await setup.request('/write-while-paused', cookie)
  redis.resume()
  t.equal(response.statusCode, 503)
  t.equal(response.json().code, 'FST_RS_STORE_UNAVAILABLE')
  t.ok(Date.now() - started < 2000, 'answered within commandTimeout, not hanging')
  t.equal(sessionCookie(response), undefined)
  // a timed-out SET may still run once Redis wakes up: the client was told it failed, nothing is half-written
  const after = (await setup.request('/read', cookie)).json()
  t.ok(after.n === 1 || after.n === 99, 'the session holds either the old or the new data')
  t.equal(after.isNew, false)
})

t.test('maxSize: a larger session is refused and nothing is written', async (t) => {
  const { request, admin } = await buildApp(t, { maxSize: 1000 }, routes)
  const cookie = sessionCookie(await request('/write')) as string
  const response = await request('/big', cookie)
  t.equal(response.statusCode, 500)
  t.equal(response.json().code, 'FST_RS_SESSION_TOO_LARGE')
  t.match(await admin.get('sess:' + idOf(cookie)), /\|\{"n":1\}$/)
})

t.test('cookieOnException', async (t) => {
  t.test('default true: the session is saved and the cookie set on error responses', async (t) => {
    const { request, admin } = await buildApp(t, {}, routes)
    const response = await request('/fail')
    t.equal(response.statusCode, 400)
    const cookie = sessionCookie(response) as string
    t.ok(cookie)
    t.match(await admin.get('sess:' + idOf(cookie)), /"failed":true/)
  })

  t.test('false: an error response neither saves nor sets the cookie', async (t) => {
    const { request, admin } = await buildApp(t, { cookieOnException: false }, routes)
    const response = await request('/fail')
    t.equal(response.statusCode, 400)
    t.equal(sessionCookie(response), undefined)
    t.equal(await admin.dbsize(), 0)
  })
})

t.test('shouldSetCookie', async (t) => {
  const { request, admin } = await buildApp(t, {
    shouldSetCookie: (request) => !request.url.startsWith('/cdn')
  }, (app) => {
    routes(app)
    app.get('/cdn/write', async (request) => {
      request.session.set('n', 42)
      return {}
    })
  })
  const fresh = await request('/cdn/write')
  t.equal(sessionCookie(fresh), undefined, 'no Set-Cookie')
  t.equal(await admin.dbsize(), 0, 'a new session nobody can find again is not stored')

  const cookie = sessionCookie(await request('/write')) as string
  const changed = await request('/cdn/write', cookie)
  t.equal(sessionCookie(changed), undefined)
  t.same((await request('/read', cookie)).json(), { n: 42, isNew: false }, 'changes to an existing session are saved')
})

t.test('a slower request never brings back a session destroyed or regenerated meanwhile', async (t) => {
  for (const ending of ['destroy', 'regenerate'] as const) {
    t.test(ending, async (t) => {
      let release = (): void => {}
      const gate = new Promise<void>((resolve) => { release = resolve })
      const { request, admin } = await buildApp(t, {}, (app) => {
        routes(app)
        app.get('/slow-write', async (request) => {
          await gate
          request.session.set('n', 1000)
          return {}
        })
        app.get('/end', async (request) => {
          if (ending === 'destroy') await request.session.destroy()
          else await request.session.regenerate(request.session.keys())
          return {}
        })
      }, { logger: { level: 'debug', stream: { write: (line: string) => logs.push(line) } } })
      const logs: string[] = []
      const cookie = sessionCookie(await request('/write')) as string
      const slow = request('/slow-write', cookie)
      await new Promise((resolve) => setTimeout(resolve, 20))
      const ended = await request('/end', cookie)
      release()
      const late = await slow
      t.equal(late.statusCode, 200, 'the slow request still answers')
      t.equal(sessionCookie(late), undefined, 'without setting the dead session\'s cookie again')
      t.equal(await admin.exists('sess:' + idOf(cookie)), 0, 'the old record stays dead')
      t.ok(logs.some((line) => line.includes('session save dropped')), 'the dropped save is logged at debug')
      t.notOk(logs.some((line) => line.includes(idOf(cookie))), 'without the session id')
      if (ending === 'regenerate') {
        const renewed = sessionCookie(ended) as string
        t.same((await request('/read', renewed)).json(), { n: 1, isNew: false }, 'the regenerated session keeps its data')
      }
    })
  }
})

t.test('with replicas, a save that lost its race is dropped, whatever the replicas answer', async (t) => {
  const redis = await privateRedis(t)
  const plain = await buildApp(t, {}, routes, {}, redis)
  const cookie = sessionCookie(await plain.request('/write')) as string
  // no replica listens: WAIT answers 0 after its timeout, which would be a 503 for a save that counted
  const waiting = await buildApp(t, { replicas: { count: 1, timeout: 50 } }, (app) => {
    app.get('/ended-meanwhile', async (request) => {
      await app.sessionStore.destroy(request.session.id)
      request.session.set('n', 1000)
      return {}
    })
  }, {}, redis)
  const response = await waiting.request('/ended-meanwhile', cookie)
  t.equal(response.statusCode, 200)
  t.equal(sessionCookie(response), undefined)
  t.equal(await redis.admin.exists('sess:' + idOf(cookie)), 0, 'the record stays dead')
})

t.test('encode and decode hooks', async (t) => {
  const { request, admin } = await buildApp(t, {
    encode: (data) => Buffer.from(JSON.stringify(data)).toString('base64'),
    decode: (payload) => JSON.parse(Buffer.from(payload, 'base64').toString())
  }, routes)
  const cookie = sessionCookie(await request('/write')) as string
  const stored = await admin.get('sess:' + idOf(cookie)) as string
  t.equal(stored.slice(stored.indexOf('|') + 1), Buffer.from('{"n":1}').toString('base64'))
  t.same((await request('/write', cookie)).json(), { n: 2 })
})

t.test('undecodable records', async (t) => {
  const bad = ['no header at all', ':1:|{not json', ':1:|[1,2]', ':1:|null', 'a:b|{}']

  t.test('are a 500 FST_RS_DECODE_FAILED by default', async (t) => {
    const { request, admin } = await buildApp(t, {}, routes)
    for (const value of bad) {
      const cookie = sessionCookie(await request('/write')) as string
      await admin.set('sess:' + idOf(cookie), value)
      const response = await request('/read', cookie)
      t.equal(response.statusCode, 500, value)
      t.equal(response.json().code, 'FST_RS_DECODE_FAILED')
    }
  })

  t.test('are a fresh session with deserializationFailsNew, the bad record replaced on save', async (t) => {
    const { request, admin } = await buildApp(t, { deserializationFailsNew: true }, routes)
    const cookie = sessionCookie(await request('/write')) as string
    await admin.set('sess:' + idOf(cookie), ':1:|{not json')
    t.same((await request('/read', cookie)).json(), { n: null, isNew: true })
    const renewed = sessionCookie(await request('/write', cookie)) as string
    t.not(idOf(renewed), idOf(cookie), 'the client\'s id is not adopted')
    t.equal(await admin.exists('sess:' + idOf(cookie)), 0)
  })
})
