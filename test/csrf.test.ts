import t from 'tap'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import fastifyCsrf, { type FastifyCsrfProtectionOptions } from '@fastify/csrf-protection'
import fastifyFormbody from '@fastify/formbody'
import type { Test } from 'tap'
import { buildApp, idOf, sessionCookie } from './helpers/app.js'

function routes (csrfOptions: FastifyCsrfProtectionOptions) {
  return (app: FastifyInstance): void => {
    app.register(fastifyFormbody)
    app.register(fastifyCsrf, csrfOptions)
    app.register(async (app) => {
      app.get('/form', async (request, reply) => ({ token: reply.generateCsrf() }))
      app.get('/form-for', async (request, reply) => {
        request.session.set('user', request.query as { name: string })
        return { token: reply.generateCsrf({ userInfo: (request.query as { name: string }).name }) }
      })
      app.get('/login', async (request) => {
        await request.session.regenerate()
        return {}
      })
      app.get('/login-keeping-forms', async (request) => {
        await request.session.regenerate(['_csrf'])
        return {}
      })
      app.post('/transfer', { onRequest: app.csrfProtection }, async () => ({ done: true }))
      // a token in the form body is only there after parsing: check it in preHandler
      app.post('/form-post', { preHandler: app.csrfProtection }, async () => ({ done: true }))
    })
  }
}

async function csrfApp (t: Test, csrfOptions: FastifyCsrfProtectionOptions) {
  const setup = await buildApp(t, {}, routes(csrfOptions))
  const post = async (url: string, cookie: string | undefined, token?: string): Promise<LightMyRequestResponse> =>
    await setup.app.inject({
      method: 'POST',
      url,
      headers: { ...(cookie === undefined ? {} : { cookie }), ...(token === undefined ? {} : { 'csrf-token': token }) }
    })
  /** a new session holding the csrf secret, and a token for it */
  const issue = async (url = '/form'): Promise<{ cookie: string, token: string }> => {
    const response = await setup.request(url)
    return { cookie: sessionCookie(response) as string, token: response.json().token }
  }
  return { ...setup, post, issue }
}

for (const sessionPlugin of ['@fastify/secure-session', '@fastify/session'] as const) {
  t.test(`@fastify/csrf-protection with sessionPlugin: '${sessionPlugin}'`, async (t) => {
    const { admin, request, post, issue, app } = await csrfApp(t, { sessionPlugin })

    t.test('generateCsrf stores the secret in the session', async (t) => {
      const { cookie, token } = await issue()
      t.ok(cookie, 'the secret started a session')
      t.type(token, 'string')
      t.match(await admin.get('sess:' + idOf(cookie)), /"_csrf":"[^"]+"/)
    })

    t.test('a token from generateCsrf is accepted', async (t) => {
      const { cookie, token } = await issue()
      const response = await post('/transfer', cookie, token)
      t.equal(response.statusCode, 200)
      t.same(response.json(), { done: true })
    })

    t.test('the secret stays: the next form reuses it and the old token still works', async (t) => {
      const { cookie, token } = await issue()
      const stored = await admin.get('sess:' + idOf(cookie))
      const again = await request('/form', cookie)
      t.equal(sessionCookie(again), undefined, 'no new session')
      t.equal(await admin.get('sess:' + idOf(cookie)), stored, 'the record is unchanged')
      t.equal((await post('/transfer', cookie, again.json().token)).statusCode, 200)
      t.equal((await post('/transfer', cookie, token)).statusCode, 200)
    })

    t.test('a missing token is rejected with 403', async (t) => {
      const { cookie } = await issue()
      const response = await post('/transfer', cookie)
      t.equal(response.statusCode, 403)
      t.equal(response.json().code, 'FST_CSRF_INVALID_TOKEN')
    })

    t.test('a wrong token is rejected with 403', async (t) => {
      const { cookie } = await issue()
      const { token: otherSessionsToken } = await issue()
      t.equal((await post('/transfer', cookie, otherSessionsToken)).statusCode, 403, "another session's token")
      t.equal((await post('/transfer', cookie, 'forged-token')).statusCode, 403, 'a made-up token')
    })

    t.test('a request without a session is rejected with 403 and stores nothing', async (t) => {
      const { token } = await issue()
      const response = await post('/transfer', undefined, token)
      t.equal(response.statusCode, 403)
      t.equal(response.json().code, 'FST_CSRF_MISSING_SECRET')
      t.equal(sessionCookie(response), undefined)
    })

    t.test('a token in a form body, checked in preHandler', async (t) => {
      const { cookie, token } = await issue()
      const form = async (body: string): Promise<LightMyRequestResponse> => await app.inject({
        method: 'POST',
        url: '/form-post',
        headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
        payload: body
      })
      t.equal((await form(new URLSearchParams({ _csrf: token, amount: '10' }).toString())).statusCode, 200)
      t.equal((await form('amount=10')).statusCode, 403)
    })

    t.test('regenerate() on login drops the secret: forms issued before login no longer post', async (t) => {
      const { cookie, token } = await issue()
      const renewed = sessionCookie(await request('/login', cookie)) as string
      t.not(idOf(renewed), idOf(cookie))
      t.equal((await post('/transfer', renewed, token)).statusCode, 403)
      t.equal((await post('/transfer', cookie, token)).statusCode, 403, 'the pre-login session is gone')
    })

    t.test("regenerate(['_csrf']) keeps the secret, so forms issued before login still post", async (t) => {
      const { cookie, token } = await issue()
      const renewed = sessionCookie(await request('/login-keeping-forms', cookie)) as string
      t.not(idOf(renewed), idOf(cookie))
      t.equal((await post('/transfer', renewed, token)).statusCode, 200)
    })
  })
}

t.test("@fastify/csrf-protection with sessionPlugin: '@fastify/session' binds tokens to the user (userInfo)", async (t) => {
  const { post, issue } = await csrfApp(t, {
    sessionPlugin: '@fastify/session',
    getUserInfo: (request) => (request.session.get('user') as { name: string }).name
  })
  const { cookie, token } = await issue('/form-for?name=ada')
  t.equal((await post('/transfer', cookie, token)).statusCode, 200)

  const { cookie: grace, token: gracesToken } = await issue('/form-for?name=grace')
  t.equal((await post('/transfer', grace, gracesToken)).statusCode, 200)
  t.equal((await post('/transfer', cookie, gracesToken)).statusCode, 403, "another user's token")
})

t.test("@fastify/csrf-protection with sessionPlugin: '@fastify/secure-session': generateCsrf(options) calls session.options(), which this plugin does not have", async (t) => {
  const { request } = await csrfApp(t, { sessionPlugin: '@fastify/secure-session' })
  const response = await request('/form-for?name=ada')
  t.equal(response.statusCode, 500, "use sessionPlugin: '@fastify/session' to pass options (userInfo) to generateCsrf")
})
