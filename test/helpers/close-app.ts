// Run as its own process by expectCleanExit(): for each options object in FRS_SHAPES, registers
// the plugin, saves a session and closes the app; then prints the statuses and simply returns.
// The process must end by itself: anything the plugin left open (a socket, a timer) keeps it alive.
import Fastify from 'fastify'
import redisSession, { type RedisSessionOptions } from '../../lib/index.js'
import { SECRET } from './app.js'

const statuses: number[] = []
for (const options of JSON.parse(process.env.FRS_SHAPES as string) as Array<Partial<RedisSessionOptions>>) {
  const app = Fastify()
  await app.register(redisSession, { secret: SECRET, ...options })
  app.get('/', async (request) => {
    request.session.set('n', 1)
    return {}
  })
  statuses.push((await app.inject('/')).statusCode)
  await app.close()
}
process.stdout.write(JSON.stringify(statuses))
