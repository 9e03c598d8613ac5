import Fastify from 'fastify'
import formbody from '@fastify/formbody'
// the package's own name resolves to dist/ through the "exports" map (a self-reference)
import redisSession from 'fastify-redis-sessions'

const escapeHtml = (value) => String(value).replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`)

/**
 * The demo app: a view counter, log in / log out / log out everywhere and flash messages.
 * @param {{ secret: string, redisUrl: string, logger?: boolean | object }} opts
 */
export async function buildApp ({ secret, redisUrl, logger = false }) {
  const app = Fastify({ logger })
  await app.register(formbody)
  await app.register(redisSession, { secret, url: redisUrl })

  app.get('/', async (request, reply) => {
    const views = request.session.get('views', 0) + 1
    request.session.set('views', views)
    const user = request.session.get('user')
    const sessions = user === undefined ? 0 : (await app.sessionStore.listByOwner(user)).length
    return reply.type('text/html; charset=utf-8').send(page({ views, user, sessions, flash: reply.flash() }))
  })

  app.post('/login', async (request, reply) => {
    const username = typeof request.body?.username === 'string' ? request.body.username.trim() : ''
    if (username === '') {
      request.flash('error', 'Please enter a user name.')
      return reply.redirect('/', 303)
    }
    // a new id on login, so an id planted before login is worth nothing afterwards
    await request.session.regenerate()
    request.session.setOwner(username) // indexes the session under its user, for "log out everywhere"
    request.session.set('user', username)
    request.flash('info', `Welcome, ${username}`)
    return reply.redirect('/', 303)
  })

  app.post('/logout', async (request, reply) => {
    await request.session.destroy()
    return reply.redirect('/', 303)
  })

  app.post('/logout-everywhere', async (request, reply) => {
    const user = request.session.get('user')
    if (user !== undefined) {
      const count = await app.sessionStore.destroyByOwner(user) // this browser's session included
      await request.session.destroy() // expires the cookie; the flash below starts a fresh session
      request.flash('info', `Signed out of ${count} session${count === 1 ? '' : 's'}`)
    }
    return reply.redirect('/', 303)
  })

  app.get('/health', { config: { session: false } }, async () => {
    await app.sessionStore.ping()
    return { status: 'ok' }
  })

  return app
}

function page ({ views, user, sessions, flash }) {
  const messages = Object.entries(flash).flatMap(([type, list]) =>
    list.map((message) => `<p class="flash ${escapeHtml(type)}">${escapeHtml(message)}</p>`))
  // SameSite=Lax session cookies keep cross-site form posts out; real apps add @fastify/csrf-protection
  const account = user === undefined
    ? `<form id="login" method="post" action="/login">
      <label>User name <input name="username" autocomplete="username" required></label>
      <button id="login-button" type="submit">Log in</button>
    </form>`
    : `<p>Logged in as <strong id="user">${escapeHtml(user)}</strong>,
      with <span id="sessions">${sessions}</span> active session${sessions === 1 ? '' : 's'}.</p>
    <form id="logout-form" method="post" action="/logout"><button id="logout" type="submit">Log out</button></form>
    <form id="logout-everywhere-form" method="post" action="/logout-everywhere">
      <button id="logout-everywhere" type="submit">Log out everywhere</button>
    </form>`
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>fastify-redis-sessions demo</title></head>
<body>
  ${messages.length > 0 ? `<div id="flash">${messages.join('')}</div>` : ''}
  <h1>fastify-redis-sessions demo</h1>
  <p>You have viewed this page <span id="views">${views}</span> time${views === 1 ? '' : 's'} in this session.</p>
  ${account}
</body>
</html>
`
}
