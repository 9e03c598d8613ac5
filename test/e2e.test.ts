// The demo in example/ clicked through in a real browser: Debian's Chromium driven by playwright-core.
// test/demo.test.ts covers the demo without a browser; this file adds what only a browser shows.
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { chromium, type Browser, type BrowserContextOptions, type Page } from 'playwright-core'
import { buildApp } from '../example/app.js'
import { startRedis } from './helpers/index.js'

// CHROMIUM_PATH names the browser; empty or `none` means "no browser" (.ci/run proves `npm test` passes so)
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const noBrowser = CHROMIUM === '' || CHROMIUM === 'none'
  ? 'no browser (CHROMIUM_PATH is empty or none)'
  : !existsSync(CHROMIUM) && `Chromium not installed at ${CHROMIUM}: apt-get install chromium, or set CHROMIUM_PATH`

t.test('the demo in headless Chromium', { skip: noBrowser }, async (t) => {
  const redis = await startRedis()
  t.teardown(async () => await redis.stop())
  const app = await buildApp({ secret: randomBytes(32).toString('base64url'), redisUrl: redis.url })
  t.teardown(async () => await app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  const home = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/`

  // playwright-core never downloads a browser; these flags keep Chromium off the (closed) network
  const browser: Browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 20_000,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync']
  })
  t.teardown(async () => await browser.close())

  /** A fresh browser profile (its own cookies) with the demo's page open. */
  async function visitor (options: BrowserContextOptions = {}): Promise<Page> {
    const context = await browser.newContext(options)
    context.setDefaultTimeout(5_000)
    const page = await context.newPage()
    await page.goto(home)
    return page
  }
  /** Clicks a link, or a button that posts a form, and waits for the page it leads to. */
  async function submit (page: Page, button: string): Promise<void> {
    const loaded = page.waitForEvent('load')
    await page.click(button)
    await loaded
  }
  async function login (page: Page, username: string): Promise<void> {
    await page.fill('#login input[name=username]', username)
    await submit(page, '#login-button')
  }
  const text = async (page: Page, selector: string): Promise<string | null> =>
    await page.locator(selector).count() === 0 ? null : await page.textContent(selector)
  const sessionId = async (page: Page): Promise<string | undefined> => {
    const cookie = (await page.context().cookies(home)).find((c) => c.name === 'session')
    return cookie?.value.slice(0, cookie.value.lastIndexOf('.'))
  }

  t.test('the counter counts reloads; the cookie is httpOnly and SameSite=Lax', async (t) => {
    const page = await visitor()
    t.equal(await text(page, '#views'), '1')
    await page.reload()
    t.equal(await text(page, '#views'), '2')
    await page.reload()
    t.equal(await text(page, '#views'), '3')
    t.equal(await text(page, '#user'), null, 'not logged in')
    const [cookie] = await page.context().cookies(home)
    t.match(cookie, { name: 'session', httpOnly: true, sameSite: 'Lax', path: '/' })
    t.equal(await page.evaluate('document.cookie'), '', 'scripts cannot read the session cookie')
    await page.context().close()
  })

  t.test('login: a new session id, the welcome flash once, the login survives reloads', async (t) => {
    const page = await visitor()
    const before = await sessionId(page)
    await login(page, 'Ada <b>&</b> Co')
    t.equal(await text(page, '#user'), 'Ada <b>&</b> Co', 'the user name is shown as text')
    t.equal(await page.locator('#user b').count(), 0, 'and not as markup')
    t.equal(await text(page, '#flash'), 'Welcome, Ada <b>&</b> Co')
    t.equal(await text(page, '#views'), '2', 'the data survives the new id')
    const after = await sessionId(page)
    t.not(after, before, 'login regenerated the id')
    t.equal(await app.sessionStore.get(before!), null, 'the id from before login is gone')

    await page.reload()
    t.equal(await text(page, '#flash'), null, 'the flash is gone after a reload')
    t.equal(await text(page, '#user'), 'Ada <b>&</b> Co')
    await page.reload()
    t.equal(await text(page, '#user'), 'Ada <b>&</b> Co', 'still logged in')
    t.equal(await text(page, '#views'), '4')
    t.equal(await sessionId(page), after)
    await page.context().close()
  })

  t.test('a blank user name is refused with a flash', async (t) => {
    const page = await visitor()
    await login(page, '   ') // passes the input's `required`, trimmed to nothing by the server
    t.equal(await text(page, '#flash'), 'Please enter a user name.')
    t.equal(await text(page, '#user'), null)
    const crafted = await page.request.post(new URL('/login', home).href, { form: {} })
    t.match(await crafted.text(), 'Please enter a user name.', 'a post without the field too')
    await page.context().close()
  })

  t.test('the health check has no session and sets no cookie', async (t) => {
    const context = await browser.newContext()
    const page = await context.newPage()
    const response = await page.goto(new URL('/health', home).href)
    t.same(await response?.json(), { status: 'ok' })
    t.same(await context.cookies(), [])
    await context.close()
  })

  t.test('logout ends the session', async (t) => {
    const page = await visitor()
    await login(page, 'grace')
    const id = await sessionId(page)
    await submit(page, '#logout')
    t.equal(await text(page, '#user'), null)
    t.equal(await page.locator('#login').count(), 1, 'the login form is back')
    t.equal(await text(page, '#views'), '1', 'a fresh session')
    t.equal(await app.sessionStore.get(id!), null, 'the record is deleted')
    await page.reload()
    t.equal(await text(page, '#user'), null, 'and stays logged out')
    await page.context().close()
  })

  t.test('log out everywhere ends the same user\'s sessions in other browsers, and only those', async (t) => {
    const [laptop, phone, other] = await Promise.all([visitor(), visitor(), visitor()])
    await login(laptop, 'linus')
    t.equal(await text(laptop, '#sessions'), '1')
    await login(phone, 'linus')
    t.equal(await text(phone, '#sessions'), '2')
    await login(other, 'margaret')
    t.equal(await text(other, '#sessions'), '1')
    await laptop.reload()
    t.equal(await text(laptop, '#sessions'), '2', 'the laptop sees the phone\'s session')

    await submit(laptop, '#logout-everywhere')
    t.equal(await text(laptop, '#flash'), 'Signed out of 2 sessions')
    t.equal(await text(laptop, '#user'), null)
    t.same(await app.sessionStore.listByOwner('linus'), [])

    await phone.reload()
    t.equal(await text(phone, '#user'), null, 'the phone is logged out')
    t.equal(await phone.locator('#login').count(), 1)
    await other.reload()
    t.equal(await text(other, '#user'), 'margaret', 'another user stays logged in')
    for (const page of [laptop, phone, other]) await page.context().close()
  })

  t.test('log out everywhere from a page whose session was already ended, then with one session', async (t) => {
    const page = await visitor()
    await login(page, 'barbara')
    t.equal(await app.sessionStore.destroyByOwner('barbara'), 1, 'ended from the server side')
    await submit(page, '#logout-everywhere')
    t.equal(await text(page, '#flash'), null, 'nothing to sign out of')
    t.equal(await page.locator('#login').count(), 1)
    await login(page, 'barbara')
    await submit(page, '#logout-everywhere')
    t.equal(await text(page, '#flash'), 'Signed out of 1 session')
    await page.context().close()
  })

  t.test('where you\'re signed in: two browsers of one user, each its own device; one signs the other out', async (t) => {
    const iphone = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1'
    const [laptop, phone] = await Promise.all([visitor(), visitor({ userAgent: iphone })])
    await login(laptop, 'katherine')
    t.same(await laptop.locator('#devices .device-name').allTextContents(), ['Chrome on Linux'])
    await login(phone, 'katherine')
    t.same(await phone.locator('#devices .device-name').allTextContents(), ['Safari on iPhone', 'Chrome on Linux'], 'the phone sees both, itself first')
    await laptop.reload()
    t.same(await laptop.locator('#devices .device-name').allTextContents(), ['Chrome on Linux', 'Safari on iPhone'])
    t.equal(await text(laptop, '#devices .device[data-current] .this-device'), 'this device')
    t.equal(await text(laptop, '#devices .device[data-current] .device-name'), 'Chrome on Linux', 'the marker is on this browser')
    t.equal(await laptop.locator('#devices .device[data-current] button').count(), 0, 'which logs out with "Log out"')
    t.match(await text(laptop, '#devices .device:not([data-current]) .device-ip'), '127.0.0.1')

    await submit(laptop, '#devices .device:not([data-current]) button.sign-out')
    t.equal(await text(laptop, '#flash'), 'Signed out Safari on iPhone.')
    t.same(await laptop.locator('#devices .device-name').allTextContents(), ['Chrome on Linux'], 'the phone is gone from the list')
    t.equal(await text(laptop, '#user'), 'katherine', 'this browser stays signed in')
    t.equal((await app.sessionStore.listByOwner('katherine')).length, 1)

    await phone.reload()
    t.equal(await text(phone, '#user'), null, 'the phone is signed out')
    t.equal(await phone.locator('#login').count(), 1)
    t.equal(await phone.locator('#devices').count(), 0)
    for (const page of [laptop, phone]) await page.context().close()
  })

  t.test('counting and looking: the links, and the panel telling what the plugin did', async (t) => {
    const page = await visitor()
    t.equal(await text(page, '#loaded'), 'new session')
    t.equal(await text(page, '#saved'), 'saved')
    await submit(page, '#peek')
    t.equal(await text(page, '#views'), '1', 'looking does not count')
    t.equal(await text(page, '#loaded'), 'from Redis')
    t.equal(await text(page, '#saved'), 'not saved')
    await submit(page, '#count')
    t.equal(await text(page, '#views'), '2')
    t.equal(await text(page, '#saved'), 'saved')
    t.equal(await text(page, '#ttl'), '20 min')
    await page.context().close()
  })

  t.test('the page as people see it: flash styled by type, fits a phone, dark mode; screenshots to look at', async (t) => {
    type Window = { getComputedStyle: (element: unknown) => { getPropertyValue: (name: string) => string } }
    const style = async (page: Page, selector: string, property: string): Promise<string> =>
      await page.locator(selector).first().evaluate((element, name) =>
        (globalThis as unknown as Window).getComputedStyle(element).getPropertyValue(name), property)
    const shot = async (page: Page, name: string): Promise<void> => {
      const path = join(tmpdir(), `fastify-redis-sessions-demo-${name}.png`)
      await page.screenshot({ path, fullPage: true })
      t.comment(`screenshot: ${path}`)
    }

    const desktop = await visitor({ viewport: { width: 1024, height: 768 } })
    await login(desktop, '   ')
    t.ok(await desktop.locator('.flash-error').isVisible(), 'the error is visible')
    const error = await style(desktop, '.flash-error', 'background-color')
    t.not(error, await style(desktop, 'body', 'background-color'), 'and stands out from the page')
    t.equal(await style(desktop, '.flash-error', 'border-left-width'), '6px')
    await shot(desktop, 'error')
    await login(desktop, 'Ada')
    t.ok(await desktop.locator('.flash-success').isVisible())
    t.not(await style(desktop, '.flash-success', 'background-color'), error, 'a welcome does not look like an error')
    await shot(desktop, 'desktop')
    await desktop.context().close()

    // without the viewport tag a phone lays the page out 980 px wide and shrinks it
    const phone = await visitor({ viewport: { width: 375, height: 720 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 })
    t.equal(await phone.evaluate('window.innerWidth'), 375, 'the viewport tag gives the phone its own width')
    t.ok(await phone.evaluate('document.documentElement.scrollWidth <= window.innerWidth'), 'nothing sticks out sideways')
    await login(phone, 'grace')
    await shot(phone, 'phone')
    await phone.context().close()

    const dark = await visitor({ colorScheme: 'dark', viewport: { width: 1024, height: 768 } })
    await login(dark, 'linus')
    t.equal(await style(dark, 'body', 'background-color'), 'rgb(21, 24, 29)', 'a dark page in dark mode')
    await shot(dark, 'dark')
    await dark.context().close()
  })
})
