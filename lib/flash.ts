import { format } from 'node:util'
import type { Session } from './session.js'

type Messages = Record<string, string[]>

/**
 * Adds flash messages, as @fastify/flash does: an array adds each, several arguments are joined
 * with `util.format`. Returns how many messages of `type` are waiting.
 */
export function addFlash (session: Session, type: string, messages: unknown[]): number {
  if (messages.length === 0) throw new TypeError('Provide a message to flash.')
  const added = Array.isArray(messages[0])
    ? messages[0] as string[]
    : [messages.length > 1 ? format(...messages) : messages[0] as string]
  const flash = session.peekFlash()
  const ofType = (Object.hasOwn(flash, type) ? flash[type] : []).concat(added)
  session.set('flash', { ...flash, [type]: ofType })
  return ofType.length
}

/** Returns the messages (of one type, or all) and removes them, so each is shown once. */
export function takeFlash (session: Session, type?: string): Messages | string[] {
  const flash = session.peekFlash()
  if (type === undefined) {
    // an empty flash is not written back, so reading it never stores a session
    if (session.has('flash')) session.delete('flash')
    return flash
  }
  if (!Object.hasOwn(flash, type)) return []
  const { [type]: taken, ...rest } = flash
  if (taken.length > 0) session.set('flash', Object.keys(rest).length > 0 ? rest : undefined)
  return taken
}
