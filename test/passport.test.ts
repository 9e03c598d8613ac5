import t from 'tap'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import fastifyPassport from '@fastify/passport'
import fastifyFormbody from '@fastify/formbody'
import { Strategy as LocalStrategy } from 'passport-local'
import type { Test } from 'tap'
import { buildApp, idOf, sessionCookie } from './helpers/app.js'

type AuthenticateOptions = NonNullable<Parameters<typeof fastifyPassport.authenticate>[1]>
interface User { id: string, name: string }
const users = new Map<string, User>([['1', { id: '1', name: 'ada' }]])

/**
 * The @fastify/passport set-up its README shows, on top of this plugin: initialize(),
 * secureSession(), a local strategy, and form logins.
 */
function routes (loginOptions: AuthenticateOptions, redirectTo?: string) {
  return (app: FastifyInstance): void => {
    const passport = new fastifyPassport.Authenticator()
    passport.use('local', new LocalStrategy((username, password, done) => {
      const user = [...users.values()].find((user) => user.name === username)
      if (user === undefined || password !== 'lovelace') return done(null, false, { message: 'Wrong user name or password' })
      done(null, user)
    }))
    passport.registerUserSerializer(async (user: User) => user.id)
    passport.registerUserDeserializer(async (id: string) => users.get(id) ?? null)

    app.register(fastifyFormbody)
    app.register(passport.initialize())
    app.register(passport.secureSession())
    app.register(async (app) => {
      app.post('/login', { preValidation: passport.authenticate('local', loginOptions) }, async (request, reply) =>
        redirectTo === undefined ? { user: request.user } : await reply.redirect(redirectTo))
      app.post('/logout', async (request) => {
        await request.logout()
        return { user: request.user }
      })
      app.get('/me', async (request) => ({
        user: request.user ?? null,
        authenticated: request.isAuthenticated(),
        data: request.session.toJSON()
      }))
      app.get('/visit', async (request) => {
        request.session.set('cart', ['tea'])
        return {}
      })
      app.get('/login', async (request, reply) => ({ errors: reply.flash('error') }))
    })
  }
}

async function passportApp (t: Test, loginOptions: AuthenticateOptions = {}, redirectTo?: string) {
  const setup = await buildApp(t, {}, routes(loginOptions, redirectTo))
  const login = async (name: string, password: string, cookie?: string): Promise<LightMyRequestResponse> =>
    await setup.app.inject({
      method: 'POST',
      url: '/login',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...(cookie === undefined ? {} : { cookie }) },
      payload: new URLSearchParams({ username: name, password }).toString()
    })
  return { ...setup, login }
}

t.test('@fastify/passport with a local strategy', async (t) => {
  const { request, admin, login } = await passportApp(t)

  t.test('login stores the user under a new id and deletes the pre-login record', async (t) => {
    const before = sessionCookie(await request('/visit')) as string
    t.equal(await admin.exists('sess:' + idOf(before)), 1)

    const response = await login('ada', 'lovelace', before)
    t.equal(response.statusCode, 200)
    t.same(response.json(), { user: { id: '1', name: 'ada' } })
    const after = sessionCookie(response) as string
    t.ok(after, 'the login sets a cookie')
    t.not(idOf(after), idOf(before), 'the session id changed (fixation defence)')
    t.equal(await admin.exists('sess:' + idOf(before)), 0, 'the pre-login record is gone')
    t.match(await admin.get('sess:' + idOf(after)), /"passport":"1"/)

    const me = (await request('/me', after)).json()
    t.same(me.user, { id: '1', name: 'ada' }, 'the next request is authenticated')
    t.equal(me.authenticated, true)
    t.same(me.data, { passport: '1' }, 'clearSessionOnLogin: what the visitor had is dropped')

    const anonymous = (await request('/me', before)).json()
    t.same([anonymous.user, anonymous.authenticated], [null, false], 'the pre-login cookie is worth nothing')
  })

  t.test('logout clears the user and regenerates the id', async (t) => {
    const loggedIn = sessionCookie(await login('ada', 'lovelace')) as string
    const response = await request('/logout', loggedIn, 'POST')
    t.equal(response.statusCode, 200)
    t.same(response.json(), { user: null })
    t.equal(await admin.exists('sess:' + idOf(loggedIn)), 0, 'the logged-in record is gone')

    const me = (await request('/me', loggedIn)).json()
    t.same([me.user, me.authenticated], [null, false], 'the old cookie is not authenticated')
    const renewed = sessionCookie(response) as string
    t.not(idOf(renewed), idOf(loggedIn), 'logout regenerates the id')
    t.same((await request('/me', renewed)).json(), { user: null, authenticated: false, data: {} })
  })

  t.test('logout leaves nothing behind for the next person at that browser (issue 11, point 13)', async (t) => {
    const loggedIn = sessionCookie(await login('ada', 'lovelace')) as string
    await request('/visit', loggedIn) // a cart, filled while logged in
    t.same((await request('/me', loggedIn)).json().data, { passport: '1', cart: ['tea'] })
    const renewed = sessionCookie(await request('/logout', loggedIn, 'POST')) as string
    t.same((await request('/me', renewed)).json(), { user: null, authenticated: false, data: {} }, 'no cart')
  })

  t.test('a wrong password gets a 401 and no session', async (t) => {
    const response = await login('ada', 'wrong')
    t.equal(response.statusCode, 401)
    t.equal(sessionCookie(response), undefined)
  })

  t.test('a deleted user is logged out by the session strategy', async (t) => {
    users.set('2', { id: '2', name: 'grace' })
    const loggedIn = sessionCookie(await login('grace', 'lovelace')) as string
    t.same((await request('/me', loggedIn)).json().user, { id: '2', name: 'grace' })
    users.delete('2')
    const me = (await request('/me', loggedIn)).json()
    t.same([me.user, me.authenticated], [null, false])
  })
})

t.test('@fastify/passport form login: failure redirect and flash, redirect from the handler on success', async (t) => {
  // failureFlash as a string: with `true`, @fastify/passport flashes only an info object that has a `type`
  const { request, login } = await passportApp(t, { failureRedirect: '/login', failureFlash: 'Wrong user name or password' }, '/me')

  t.test('a failed login redirects and flashes the reason once', async (t) => {
    const response = await login('ada', 'wrong')
    t.equal(response.statusCode, 302)
    t.equal(response.headers.location, '/login')
    const cookie = sessionCookie(response) as string
    t.ok(cookie, 'the flash started a session')
    t.same((await request('/login', cookie)).json(), { errors: ['Wrong user name or password'] })
    t.same((await request('/login', cookie)).json(), { errors: [] }, 'shown once')
  })

  t.test('a successful login redirects with the new session cookie', async (t) => {
    const response = await login('ada', 'lovelace')
    t.equal(response.statusCode, 302)
    t.equal(response.headers.location, '/me')
    t.same((await request('/me', sessionCookie(response))).json().user, { id: '1', name: 'ada' })
  })
})

// @fastify/passport redirects from an async hook without `return reply`, so the route handler sends
// again while our onSend saves: the first response (with the cookie) must win
t.test('@fastify/passport successRedirect', async (t) => {
  const { request, login } = await passportApp(t, { successRedirect: '/me' })
  const response = await login('ada', 'lovelace')
  t.equal(response.statusCode, 302)
  t.equal(response.headers.location, '/me')
  const cookie = sessionCookie(response)
  t.ok(cookie, 'the login sets the session cookie')
  t.same((await request('/me', cookie)).json().user, { id: '1', name: 'ada' })
})

t.test('@fastify/passport keepSessionInfo keeps what the visitor had', async (t) => {
  const { request, admin, login } = await passportApp(t, { keepSessionInfo: true })
  const before = sessionCookie(await request('/visit')) as string
  const after = sessionCookie(await login('ada', 'lovelace', before)) as string
  t.not(idOf(after), idOf(before))
  t.equal(await admin.exists('sess:' + idOf(before)), 0)
  t.same((await request('/me', after)).json().data, { cart: ['tea'], passport: '1' })
})
