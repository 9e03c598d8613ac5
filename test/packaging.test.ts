import t from 'tap'
import { execFile } from 'node:child_process'
import { readdir, readFile, stat } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { join, relative } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import { errorCodes } from '../lib/index.js'
import { privateRedis, SECRET } from './helpers/app.js'

const run = promisify(execFile)
const repo = fileURLToPath(new URL('..', import.meta.url))
const dist = join(repo, 'dist', 'index.js')

interface PackageJson {
  type: string
  main: string
  exports: Record<string, Record<string, string> | string>
  engines: { node: string }
  files: string[]
}
const pkg = JSON.parse(await readFile(join(repo, 'package.json'), 'utf8')) as PackageJson

async function mtime (path: string): Promise<number> {
  return await stat(path).then((stats) => stats.mtimeMs, () => 0)
}

/** Whether some lib/ module is newer than its build in dist/ (or was never built). */
async function distIsStale (): Promise<boolean> {
  for (const file of await readdir(join(repo, 'lib'), { recursive: true })) {
    if (!file.endsWith('.ts')) continue
    const built = join(repo, 'dist', file.replace(/\.ts$/, '.js'))
    if (await mtime(built) < await mtime(join(repo, 'lib', file))) return true
  }
  return false
}

t.before(async () => {
  if (!await distIsStale()) return
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')
  await run(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: repo })
})

const { redis } = await privateRedis(t)

/** Runs `source` in a clean Node process (cwd: the repository) against the private Redis and parses what it prints. */
async function consumer (flags: string[], source: string): Promise<Record<string, unknown>> {
  const { NODE_OPTIONS: _loaders, ...env } = process.env
  const { stdout } = await run(process.execPath, [...flags, '-e', source], {
    cwd: repo,
    env: { ...env, SESSION_SECRET: SECRET, SESSION_REDIS_URL: redis.url },
    timeout: 20_000
  })
  return JSON.parse(stdout.trim().split('\n').at(-1) as string) as Record<string, unknown>
}

// the same app in both module systems: a session that counts views, read back with its cookie
const viewsApp = `
  app.get('/', async (request) => {
    request.session.set('views', request.session.get('views', 0) + 1)
    return { views: request.session.get('views') }
  })
  const first = await app.inject('/')
  const cookie = first.headers['set-cookie'].split(';')[0]
  const views = (await app.inject({ url: '/', headers: { cookie } })).json().views
  const decorated = app.hasRequestDecorator('session') && app.hasDecorator('sessionStore')
  await app.close()`

const esmConsumer = `
  import Fastify from 'fastify'
  import redisSession, { redisSession as named, errorCodes } from ${JSON.stringify(pathToFileURL(dist).href)}
  import * as byName from 'fastify-redis-sessions'

  const app = Fastify()
  await app.register(redisSession, { secret: process.env.SESSION_SECRET, url: process.env.SESSION_REDIS_URL })
  ${viewsApp}
  console.log(JSON.stringify({
    defaultType: typeof redisSession,
    defaultIsNamed: redisSession === named,
    byNameIsDefault: byName.default === redisSession,
    errorCodes: Object.keys(errorCodes).sort(),
    decorated,
    views
  }))`

const cjsConsumer = `
  const Fastify = require('fastify')
  const required = require(${JSON.stringify(dist)})
  const byName = require('fastify-redis-sessions')
  ;(async () => {
    const app = Fastify()
    await app.register(require(${JSON.stringify(dist)}), { secret: process.env.SESSION_SECRET, url: process.env.SESSION_REDIS_URL })
    ${viewsApp}
    console.log(JSON.stringify({
      requiredType: typeof required,
      requiredKeys: Object.keys(required).sort(),
      defaultType: typeof required.default,
      defaultIsNamed: required.default === required.redisSession,
      byNameIsSame: byName === required,
      errorCodes: Object.keys(required.errorCodes).sort(),
      decorated,
      views
    }))
  })().catch((err) => { console.error(err); process.exitCode = 1 })`

const codes = Object.keys(errorCodes).sort()

t.test('error codes', async (t) => {
  for (const code of ['FST_RS_INVALID_OPTIONS', 'FST_RS_STORE_UNAVAILABLE', 'FST_RS_DECODE_FAILED', 'FST_RS_SESSION_TOO_LARGE']) {
    t.ok(codes.includes(code), code)
  }
  t.ok(codes.every((code) => code.startsWith('FST_RS_')))
})

t.test('ESM: default and named export are the plugin', async (t) => {
  t.same(await consumer(['--input-type=module'], esmConsumer), {
    defaultType: 'function',
    defaultIsNamed: true,
    byNameIsDefault: true,
    errorCodes: codes,
    decorated: true,
    views: 2
  })
})

const [major, minor] = process.versions.node.split('.').map(Number)
const requireEsm = major > 20 || (major === 20 && minor >= 19)

t.test('CommonJS: require() of the ESM build, and register(require(…))', { skip: requireEsm ? false : `Node ${process.versions.node} cannot require() ESM` }, async (t) => {
  const { requiredType, requiredKeys, ...result } = await consumer(['--input-type=commonjs'], cjsConsumer)
  t.same(result, {
    defaultType: 'function',
    defaultIsNamed: true,
    byNameIsSame: true,
    errorCodes: codes,
    decorated: true,
    views: 2
  }, 'register(require(…)) works and the session round-trips')
  // require() of ESM returns the module namespace, not the plugin: Fastify (avvio) registers its `default`
  t.same({ requiredType, requiredKeys }, { requiredType: 'object', requiredKeys: ['__esModule', 'default', 'errorCodes', 'redisSession'] },
    'require() returns the module namespace')
})

t.test('package.json', async (t) => {
  t.equal(pkg.type, 'module')
  const root = pkg.exports['.']
  t.type(root, 'object')
  const conditions = Object.keys(root)
  t.equal(conditions[0], 'types', '`types` comes first in the exports map')
  t.same(root, { types: './dist/index.d.ts', default: './dist/index.js' })
  t.equal(pkg.main, './dist/index.js')
  t.equal(pkg.engines.node, '>=20.19')
  t.ok(pkg.files.includes('dist'))
  for (const target of [pkg.main, (root as Record<string, string>).types]) {
    t.ok(await mtime(join(repo, target)) > 0, relative(repo, join(repo, target)) + ' is built')
  }
  const types = await readFile(join(repo, 'dist', 'index.d.ts'), 'utf8')
  t.match(types, '@example', 'the TSDoc survives the build')
  t.match(types, /export default/)
})
