import { fork } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { COOKIE_NAME } from './servers/identity.js'

// what a signed cookie of this plugin looks like, so variants without sessions get the same headers
const UNUSED_COOKIE = `${COOKIE_NAME}=${'i'.repeat(43)}.${'s'.repeat(43)}`

// killed by PID if the parent exits without closing them (an error, Ctrl-C)
const running = new Set()
process.on('exit', () => { for (const child of running) child.kill('SIGKILL') })

/**
 * Forks `bench/servers/<variant.server>.js` (its own heap and event loop) and resolves once it
 * listens. The handle asks the server for CPU and heap figures over IPC.
 */
export async function startServer (variant, redisUrl, execArgv = []) {
  const file = fileURLToPath(new URL(`servers/${variant.server}.js`, import.meta.url))
  const child = fork(file, [JSON.stringify({ redisUrl, ...variant.settings })], { execArgv: ['--expose-gc', ...execArgv], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  running.add(child)
  const [ready] = await Promise.race([
    once(child, 'message'),
    once(child, 'exit').then(([code]) => { throw new Error(`${variant.name} server exited with code ${code} before listening`) })
  ])
  const url = `http://127.0.0.1:${ready.port}`

  /** Sends `type` and resolves with the server's answer of the same type. */
  async function ask (type) {
    const answer = new Promise((resolve) => {
      child.on('message', function onMessage (message) {
        if (message.type !== type) return
        child.off('message', onMessage)
        resolve(message)
      })
    })
    child.send({ type })
    return await answer
  }

  return {
    variant,
    url,
    startCpu: async () => await ask('cpu-start'),
    /** CPU µs (user + system) the server spent since `startCpu()`. */
    stopCpu: async () => (await ask('cpu-stop')).micros,
    heap: async () => await ask('heap'),
    startProfile: async () => await ask('profile-start'),
    /** The CPU profile (Chrome's .cpuprofile JSON) of what the server ran since `startProfile()`. */
    stopProfile: async () => (await ask('profile-stop')).profile,

    /**
     * A `session=…` pair for a stored session, made by the write route; checked by a second
     * write that must see the first, so no variant is measured with a cookie it ignores.
     */
    async sessionCookie () {
      if (!variant.sessions) return UNUSED_COOKIE
      const first = await fetch(url + '/write')
      const cookie = first.headers.getSetCookie().map((line) => line.split(';')[0]).find((pair) => pair.startsWith(COOKIE_NAME + '='))
      if (cookie === undefined) throw new Error(`${variant.name}: the write route set no ${COOKIE_NAME} cookie`)
      const second = await (await fetch(url + '/write', { headers: { cookie } })).json()
      if (second.views !== 2) throw new Error(`${variant.name}: the session cookie was not honoured (views ${second.views})`)
      return cookie
    },

    async close () {
      const exited = once(child, 'exit')
      child.send({ type: 'exit' })
      await exited
      running.delete(child)
    }
  }
}
