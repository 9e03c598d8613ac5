import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import redisSession, { errorCodes } from '../lib/index.js'
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
  peerDependencies: { fastify: string }
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
// child processes run without tap's loaders
const { NODE_OPTIONS: _loaders, ...childEnv } = process.env

/** Runs `source` in a clean Node process (in `cwd`) against the private Redis and parses what it prints. */
async function consumer (flags: string[], source: string, cwd = repo): Promise<Record<string, unknown>> {
  const { stdout } = await run(process.execPath, [...flags, '-e', source], {
    cwd,
    env: { ...childEnv, SESSION_SECRET: SECRET, SESSION_REDIS_URL: redis.url },
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

// a project of a user's own, outside this repository, that installed the package and Fastify from npm
const installedConsumer = `
  import Fastify from 'fastify'
  import redisSession from 'fastify-redis-sessions'

  const app = Fastify()
  const fastify = app.version
  await app.register(redisSession, { secret: process.env.SESSION_SECRET, url: process.env.SESSION_REDIS_URL })
  ${viewsApp}
  console.log(JSON.stringify({ fastify, plugin: import.meta.resolve('fastify-redis-sessions'), decorated, views }))`

const codes = Object.keys(errorCodes).sort()
/** The lower bound of the peer range: the oldest Fastify the package promises to work with. */
const oldestFastify = /\d+\.\d+\.\d+/.exec(pkg.peerDependencies.fastify)?.[0] as string

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

t.test('the peer range and the plugin metadata name the same Fastify versions', async (t) => {
  const meta = (redisSession as unknown as Record<symbol, { fastify: string }>)[Symbol.for('plugin-meta')]
  t.equal(meta.fastify, pkg.peerDependencies.fastify)
  // every Fastify 5 (issue #11: ^5.12.8 refused apps on 5.6 with ERESOLVE); .ci/run tests this oldest one
  t.equal(oldestFastify, '5.0.0', 'the range starts at the first Fastify 5')
})

t.test('npm pack: the tarball holds dist/ and installs into a fresh project beside the oldest Fastify of the peer range', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fastify-redis-sessions-consumer-'))
  t.teardown(async () => await rm(dir, { recursive: true, force: true }))
  // --ignore-scripts: dist/ is fresh (t.before), `prepare` would only build it again
  const packed = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: repo, env: childEnv })
  const [{ filename, files }] = JSON.parse(packed.stdout) as Array<{ filename: string, files: Array<{ path: string }> }>
  const paths = files.map((file) => file.path)
  for (const built of ['dist/index.js', 'dist/index.d.ts', 'dist/plugin.js', 'bin/fastify-redis-sessions.js']) t.ok(paths.includes(built), built)
  t.notOk(paths.some((path) => /^(lib|test|types|example)\//.test(path)), 'no sources, tests or demo')

  await writeFile(join(dir, 'package.json'), JSON.stringify({
    private: true,
    type: 'module',
    dependencies: { fastify: oldestFastify, 'fastify-redis-sessions': 'file:' + filename }
  }))
  // from the npm cache that installing this repository filled; the registry only for what it lacks
  await run('npm', ['install', '--prefer-offline', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: dir, env: childEnv, timeout: 90_000 })
  t.same(await consumer(['--input-type=module'], installedConsumer, dir), {
    fastify: oldestFastify,
    plugin: pathToFileURL(join(dir, 'node_modules', 'fastify-redis-sessions', 'dist', 'index.js')).href,
    decorated: true,
    views: 2
  }, 'the installed plugin serves a session')
})
