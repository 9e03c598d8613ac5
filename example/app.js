import { createHash } from 'node:crypto'
import Fastify from 'fastify'
import formbody from '@fastify/formbody'
// the package's own name resolves to dist/ through the "exports" map (a self-reference)
import redisSession from 'fastify-redis-sessions'
import { sessionMetrics } from './metrics.js'

/** Seconds a session lives without a request (the plugin's `timeout`). */
export const SESSION_TIMEOUT = 20 * 60
const COOKIE_NAME = 'session'
const SENT_SESSION_COOKIE = new RegExp(`(?:^|;)\\s*${COOKIE_NAME}=`)

const escapeHtml = (value) => String(value).replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`)
const plural = (count, noun) => `${count} ${noun}${count === 1 ? '' : 's'}`

/**
 * The demo app: a view counter, log in / log out / log out everywhere, the devices signed in with
 * a sign-out button each, flash messages, and a panel telling what the plugin did for the request.
 * @param {{ secret: string, redisUrl: string, logger?: boolean | object }} opts
 */
export async function buildApp ({ secret, redisUrl, logger = false }) {
  const app = Fastify({ logger })
  await app.register(formbody)
  await app.register(redisSession, { secret, url: redisUrl, timeout: SESSION_TIMEOUT, cookieName: COOKIE_NAME })

  /** The page, with the session's state as this request found it and whether the response saves it. */
  async function show (request, reply, { views, saves, flash }) {
    const load = loadStory(request)
    const user = request.session.get('user')
    // newest first, each with its info (user agent, address, sign-in time): two round trips however many
    const devices = user === undefined ? [] : await app.sessionStore.listByOwner(user)
    const stored = !load.fresh || saves
    return reply.type('text/html; charset=utf-8').send(page({ views, user, devices, current: request.session.id, flash, load, saves, stored }))
  }

  app.get('/', async (request, reply) => {
    const views = request.session.get('views', 0) + 1
    request.session.set('views', views)
    return await show(request, reply, { views, saves: true, flash: reply.flash() })
  })

  // reads the session and changes nothing, so the plugin writes nothing (flash is left for `/`)
  app.get('/peek', async (request, reply) =>
    await show(request, reply, { views: request.session.get('views', 0), saves: false, flash: {} }))

  app.post('/login', async (request, reply) => {
    const username = typeof request.body?.username === 'string' ? request.body.username.trim() : ''
    if (username === '') {
      request.flash('error', 'Please enter a user name.')
      return reply.redirect('/', 303)
    }
    // a new id on login, so an id planted before login is worth nothing afterwards; only the counter moves over
    await request.session.regenerate(['views'])
    // indexes the session under its user, for "log out everywhere" and the devices list, with what
    // that list shows of this browser (at most 1 KiB as JSON: the user agent is cut)
    request.session.setOwner(username, { userAgent: (request.headers['user-agent'] ?? '').slice(0, 200), ip: request.ip, signedInAt: Date.now() })
    request.session.set('user', username)
    request.flash('success', `Welcome, ${username}`)
    return reply.redirect('/', 303)
  })

  app.post('/logout', async (request, reply) => {
    await request.session.destroy() // the record is deleted now; the flash below starts a fresh session
    request.flash('info', 'You are logged out.')
    return reply.redirect('/', 303)
  })

  app.post('/logout-everywhere', async (request, reply) => {
    const user = request.session.get('user')
    if (user !== undefined) {
      const count = await app.sessionStore.destroyByOwner(user) // this browser's session included
      await request.session.destroy() // expires the cookie; the flash below starts a fresh session
      request.flash('info', `Signed out of ${plural(count, 'session')}`)
    }
    return reply.redirect('/', 303)
  })

  // signs another device out: the form names it by a digest, so no session id is put in the page,
  // and only a device of the signed-in user can be found by it
  app.post('/devices/sign-out', async (request, reply) => {
    const user = request.session.get('user')
    const device = typeof request.body?.device === 'string' ? request.body.device : ''
    const sessions = user === undefined ? [] : await app.sessionStore.listByOwner(user)
    const target = sessions.find(({ id }) => deviceHandle(id) === device && id !== request.session.id)
    if (target === undefined) {
      request.flash('warning', 'That device is not signed in (any more).')
    } else {
      await app.sessionStore.destroy(target.id)
      request.flash('info', `Signed out ${describeAgent(target.info.userAgent)}.`)
    }
    return reply.redirect('/', 303)
  })

  app.get('/health', { config: { session: false } }, async () => {
    await app.sessionStore.ping()
    return { status: 'ok' }
  })

  // Prometheus metrics fed by the plugin's tracing channels (example/metrics.js)
  const metrics = sessionMetrics()
  app.addHook('onClose', async () => metrics.close())
  app.get('/metrics', { config: { session: false } }, async (request, reply) =>
    reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()))

  return app
}

/** Whether the session came from Redis: `isNew` tells before the handler's changes are saved. */
function loadStory (request) {
  if (!request.session.isNew) {
    return { fresh: false, text: 'Your browser sent a signed cookie naming a live session: one GETEX read it and reset its expiry.' }
  }
  return SENT_SESSION_COOKIE.test(request.headers.cookie ?? '')
    ? { fresh: true, text: 'Your browser sent a session cookie, but it names no live session (expired, ended, or not signed with this server\'s secret): a new one starts.' }
    : { fresh: true, text: 'No session cookie came with this request, so Redis was not asked.' }
}

/** What the page calls a session in its forms: a digest of the id, never the id itself. */
const deviceHandle = (id) => createHash('sha256').update(id).digest('base64url').slice(0, 22)

/** "Firefox on Linux" from a user agent, as far as a few patterns tell. */
function describeAgent (userAgent = '') {
  const browser = [['Edg/', 'Edge'], ['Firefox/', 'Firefox'], ['Chrome/', 'Chrome'], ['Safari/', 'Safari'], ['curl/', 'curl']]
    .find(([token]) => userAgent.includes(token))?.[1]
  const system = [['iPhone', 'iPhone'], ['Android', 'Android'], ['Windows', 'Windows'], ['Mac OS X', 'macOS'], ['Linux', 'Linux']]
    .find(([token]) => userAgent.includes(token))?.[1]
  if (browser === undefined) return userAgent === '' ? 'an unknown browser' : userAgent.slice(0, 40)
  return system === undefined ? browser : `${browser} on ${system}`
}

// every session of the demo expires (it never calls adjustTimeout), so lastSeenAt is always known
const formatTime = (ms) => new Date(ms).toISOString().slice(0, 16).replace('T', ' ') + ' UTC'

/** "Where you're signed in": each of the user's sessions, this browser's marked, the others with a sign-out button. */
function devicesCard (devices, current) {
  // every session in the list was filed at login, with its info
  const items = devices.map(({ id, lastSeenAt, info }) => {
    const here = id === current
    const handle = deviceHandle(id)
    return `<li class="device" data-device="${handle}"${here ? ' data-current' : ''}>
        <p><strong class="device-name">${escapeHtml(describeAgent(info.userAgent))}</strong>${here ? ' <span class="badge yes this-device">this device</span>' : ''}</p>
        <p class="muted">IP <span class="device-ip">${escapeHtml(info.ip)}</span> · signed in <span class="device-since">${formatTime(info.signedInAt)}</span>
          · last seen <span class="device-seen">${here ? 'now' : formatTime(lastSeenAt)}</span></p>
        ${here
          ? ''
          : `<form method="post" action="/devices/sign-out"><input type="hidden" name="device" value="${handle}"><button class="secondary sign-out" type="submit">Sign out</button></form>`}
      </li>`
  })
  return `<section class="card" id="devices-card">
    <h2>Where you're signed in</h2>
    <ul id="devices">${items.join('')}</ul>
  </section>`
}

function saveStory ({ load, saves }) {
  if (saves) {
    return load.fresh
      ? 'The counter changed, so the plugin stored the new session (SET … NX) before this page left, and set its cookie.'
      : 'The counter changed, so the plugin wrote the session back once (SET … XX) before this page left.'
  }
  return load.fresh
    ? 'Nothing was written, so nothing is stored and no cookie is set.'
    : 'Nothing changed, so nothing was written: the read was the only Redis round trip.'
}

function page ({ views, user, devices, current, flash, load, saves, stored }) {
  const sessions = devices.length
  const messages = Object.entries(flash).flatMap(([type, list]) => list.map((message) =>
    `<p class="flash flash-${escapeHtml(type)}" role="${type === 'error' ? 'alert' : 'status'}">${escapeHtml(message)}</p>`))
  // SameSite=Lax session cookies keep cross-site form posts out; real apps add @fastify/csrf-protection
  const account = user === undefined
    ? `<form id="login" class="row" method="post" action="/login">
        <label for="username">User name</label>
        <input id="username" name="username" autocomplete="username" required>
        <button id="login-button" type="submit">Log in</button>
      </form>`
    : `<p>Logged in as <strong id="user">${escapeHtml(user)}</strong>,
        with <span id="sessions">${sessions}</span> active session${sessions === 1 ? '' : 's'}.</p>
      <div class="row">
        <form id="logout-form" method="post" action="/logout"><button id="logout" type="submit">Log out</button></form>
        <form id="logout-everywhere-form" method="post" action="/logout-everywhere">
          <button id="logout-everywhere" class="secondary" type="submit">Log out everywhere</button>
        </form>
      </div>`
  // The TTL is known without asking Redis: every load is a GETEX … EX <timeout> and every save a
  // SET … EX <timeout>, so a session that was loaded or saved has just been given the whole timeout
  // (the demo never calls adjustTimeout). A PTTL would cost this request a round trip to learn it;
  // test/demo.test.ts checks the page against PTTL instead.
  const ttl = !stored
    ? '<span id="ttl" class="badge no">not stored</span> Redis holds nothing for this browser.'
    : `<span id="ttl" class="badge yes">${SESSION_TIMEOUT / 60} min</span> without a request: TTL ${SESSION_TIMEOUT} s, ${load.fresh
      ? 'set by this save.'
      : 'reset by this request\'s read (the expiry slides with every request).'}`
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>fastify-redis-sessions demo</title>
<style>
  :root { color-scheme: light dark; --bg: #f4f5f7; --card: #fff; --text: #1d2430; --muted: #5b6473; --line: #dde1e7;
    --accent: #2458d3; --accent-text: #fff; --yes: #1e7b45; --yes-bg: #e3f4ea; --no: #6b7280; --no-bg: #eceef1 }
  @media (prefers-color-scheme: dark) {
    :root { --bg: #15181d; --card: #1e232b; --text: #e6e9ee; --muted: #a0a8b5; --line: #333a45;
      --accent: #6c95f5; --accent-text: #0d1320; --yes: #7fd6a0; --yes-bg: #1c3527; --no: #aab1bd; --no-bg: #2a3039 }
  }
  * { box-sizing: border-box }
  body { margin: 0; background: var(--bg); color: var(--text); font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif }
  main { max-width: 42rem; margin: 0 auto; padding: 1.5rem 1rem 3rem }
  h1 { font-size: 1.6rem; margin: 0 0 .25rem }
  h2 { font-size: 1.05rem; margin: 0 0 .75rem }
  .lead, .muted { color: var(--muted) }
  .lead { margin: 0 0 1.25rem }
  .card { background: var(--card); border: 1px solid var(--line); border-radius: 12px; padding: 1.1rem 1.25rem; margin: 0 0 1rem }
  .card > :last-child { margin-bottom: 0 }
  .counter { display: flex; flex-wrap: wrap; align-items: baseline; gap: .1rem .6rem; margin: 0 0 1rem }
  .count { font-size: 2.5rem; font-weight: 700; line-height: 1; font-variant-numeric: tabular-nums }
  .row { display: flex; flex-wrap: wrap; gap: .5rem; align-items: center }
  form { margin: 0 }
  label { font-weight: 600 }
  input { flex: 1 1 10rem; min-width: 0; font: inherit; padding: .45rem .6rem; border: 1px solid var(--line); border-radius: 8px; background: var(--bg); color: inherit }
  button, .button { font: inherit; font-weight: 600; padding: .45rem .9rem; border-radius: 8px; border: 1px solid var(--accent);
    background: var(--accent); color: var(--accent-text); cursor: pointer; text-decoration: none; display: inline-block }
  .secondary { background: transparent; color: var(--accent) }
  a { color: var(--accent) }
  .flash { margin: 0 0 .6rem; padding: .7rem 1rem; border-radius: 10px; border: 1px solid; border-left-width: 6px; font-weight: 500 }
  .flash-info { background: #e8f0fe; border-color: #2458d3; color: #15337a }
  .flash-success { background: #e3f4ea; border-color: #1e7b45; color: #124d2b }
  .flash-warning { background: #fff4d6; border-color: #b7791f; color: #5f3d00 }
  .flash-error { background: #fde8e8; border-color: #c53030; color: #7a1414 }
  #flash { margin-bottom: 1rem }
  @media (prefers-color-scheme: dark) {
    .flash-info { background: #17264a; color: #c9dafc }
    .flash-success { background: #15321f; color: #bfeacc }
    .flash-warning { background: #3a2c0c; color: #f8deb0 }
    .flash-error { background: #3d1a1a; color: #f8c4c4 }
  }
  dl { margin: 0; display: grid; grid-template-columns: max-content 1fr; gap: .6rem 1rem }
  dt { font-weight: 600 }
  dd { margin: 0 }
  .badge { display: inline-block; font-size: .85rem; font-weight: 700; padding: .05rem .55rem; border-radius: 999px; margin-right: .35rem }
  .yes { color: var(--yes); background: var(--yes-bg) }
  .no { color: var(--no); background: var(--no-bg) }
  code { font-size: .9em }
  #devices { list-style: none; margin: 0; padding: 0 }
  .device { display: flex; flex-wrap: wrap; align-items: center; justify-content: space-between; gap: .25rem 1rem; padding: .6rem 0; border-top: 1px solid var(--line) }
  .device:first-child { border-top: 0; padding-top: 0 }
  .device:last-child { padding-bottom: 0 }
  .device p { margin: 0; flex: 1 1 100% }
  .device form { flex: 0 0 auto }
  @media (max-width: 30rem) { dl { grid-template-columns: 1fr; gap: .15rem } dd { margin-bottom: .5rem } }
</style>
</head>
<body>
<main>
  <h1>fastify-redis-sessions demo</h1>
  <p class="lead">Sessions for Fastify, kept in Redis: loaded only when a signed cookie comes in, written at most once per request.</p>
  ${messages.length > 0 ? `<div id="flash">${messages.join('')}</div>` : ''}
  <section class="card">
    <p class="counter"><span class="count" id="views">${views}</span> view${views === 1 ? '' : 's'} of this page in this session.</p>
    <p class="row"><a class="button" id="count" href="/">Reload to count</a> <a class="button secondary" id="peek" href="/peek">Look without counting</a></p>
  </section>
  <section class="card">
    <h2>Account</h2>
    ${account}
  </section>
  ${user === undefined ? '' : devicesCard(devices, current)}
  <section class="card" id="plugin">
    <h2>What the plugin did for this request</h2>
    <dl>
      <dt>Loaded</dt>
      <dd><span id="loaded" class="badge ${load.fresh ? 'no">new session' : 'yes">from Redis'}</span> ${escapeHtml(load.text)}</dd>
      <dt>Saved</dt>
      <dd><span id="saved" class="badge ${saves ? 'yes">saved' : 'no">not saved'}</span> ${escapeHtml(saveStory({ load, saves }))}</dd>
      <dt>Expires after</dt>
      <dd>${ttl}</dd>
    </dl>
  </section>
  <p class="muted" id="try">Try this: reload to count, look without counting (a read, no write), log in, then open a private
    window, log in as the same user, and sign it out under “Where you're signed in” or press “Log out everywhere”. <a href="/health">/health</a> opts out of sessions: no Redis read, no cookie. <a href="/metrics">/metrics</a> counts loads, saves and destroys for Prometheus.</p>
</main>
</body>
</html>
`
}
