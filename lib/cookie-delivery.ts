import type { FastifyRequest } from 'fastify'
import { securePrefixOf, type CookieAttributes } from './cookie.js'

/** Why a browser may not keep the session cookie set in answer to a request. */
interface DeliveryProblem {
  /** false: the browser drops the cookie, so a new session is not stored (nobody could find it again) */
  keepable: boolean
  /** the cause and the fix, logged once per registration */
  message: string
}

const LOOPBACK = /^(?:localhost|.+\.localhost|127(?:\.\d{1,3}){3}|\[::1\])$/i
const UNTRUSTED_PROXY = 'X-Forwarded-Proto says https but came from a proxy Fastify does not trust, so request.protocol is http'
const TRUST_PROXY = "Set Fastify's trustProxy option (Fastify({ trustProxy: true }), or the proxy's address)"
const NOT_STORED = 'so no new session is stored and no cookie is set'

/**
 * Tells whether the browser can keep the cookie of a new session created by `request` (one that
 * came without a valid session cookie). A Secure cookie is dropped on plain http, and so is a
 * cookie without Secure that needs it (SameSite=None, a `__Secure-` or `__Host-` name). Each
 * problem found is logged once per registration as a warning naming its cause and fix.
 * @example
 * const keptByBrowser = cookieDelivery('session', { path: '/', httpOnly: true, sameSite: 'lax', secure: true, partitioned: false })
 * if (keptByBrowser(request)) { ... store the new session and set its cookie ... }
 */
export function cookieDelivery (cookieName: string, attributes: CookieAttributes): (request: FastifyRequest) => boolean {
  const problems = describeProblems(cookieName, attributes)
  const logged = new Set<DeliveryProblem>()
  return function keptByBrowser (request) {
    const problem = problemOf(request, attributes.secure, problems)
    if (problem === undefined) return true
    if (!logged.has(problem)) {
      logged.add(problem)
      request.log.warn(problem.message + ' (logged once; it holds for every such request)')
    }
    return problem.keepable
  }
}

type Problems = ReturnType<typeof describeProblems>

/** The host without its port; Fastify's own `request.hostname` cut `[::1]:3000` to `[` before 5.x. */
function hostnameOf (host: string): string {
  return host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.split(':', 1)[0]
}

function problemOf (request: FastifyRequest, secure: CookieAttributes['secure'], problems: Problems): DeliveryProblem | undefined {
  if (secure === false || request.protocol === 'https') return undefined
  // Fastify reads X-Forwarded-Proto only from a trusted proxy; here it was not trusted
  const proto = request.headers['x-forwarded-proto']
  const proxiedHttps = typeof proto === 'string' && proto.slice(proto.lastIndexOf(',') + 1).trim().toLowerCase() === 'https'
  if (secure === true) {
    if (proxiedHttps) return problems.secureBehindUntrustedProxy
    return LOOPBACK.test(hostnameOf(request.host)) ? problems.secureOnLoopback : problems.secureOverHttp
  }
  // secure: 'auto' sends no Secure attribute on this request
  if (proxiedHttps) return problems.autoBehindUntrustedProxy
  return problems.insecureButNeedsSecure
}

function describeProblems (cookieName: string, { sameSite }: CookieAttributes) {
  const prefix = securePrefixOf(cookieName)
  const needsSecure = sameSite === 'none' ? 'a SameSite=None cookie' : prefix === undefined ? undefined : `a cookie named ${prefix}…`
  return {
    secureOverHttp: {
      keepable: false,
      message: `cookie.secure is true but this request came over plain http: browsers drop Secure cookies on http, ${NOT_STORED}. ` +
        "Serve the app over https, or set cookie.secure: 'auto' (Secure on https requests only)"
    },
    secureOnLoopback: {
      keepable: true,
      message: 'cookie.secure is true and this request came over plain http to a loopback host: Chrome and Firefox keep Secure ' +
        "cookies from localhost, Safari does not (nor does any browser from other http hosts). For development set cookie.secure: 'auto'"
    },
    secureBehindUntrustedProxy: {
      keepable: true,
      message: `${UNTRUSTED_PROXY}; the browser is on https and keeps the Secure cookie. ${TRUST_PROXY}`
    },
    autoBehindUntrustedProxy: needsSecure === undefined
      ? { keepable: true, message: `${UNTRUSTED_PROXY} and cookie.secure 'auto' sends the cookie without Secure although the browser is on https. ${TRUST_PROXY}` }
      : { keepable: false, message: `${UNTRUSTED_PROXY} and cookie.secure 'auto' would send the cookie without Secure, which browsers refuse for ${needsSecure}, ${NOT_STORED}. ${TRUST_PROXY}` },
    insecureButNeedsSecure: needsSecure === undefined
      ? undefined
      : {
          keepable: false,
          message: `Browsers refuse ${needsSecure} without Secure, which cookie.secure 'auto' leaves out on plain http, ${NOT_STORED}. ` +
            "Serve the app over https (behind a TLS proxy, with Fastify's trustProxy)" + (sameSite === 'none' ? ", or use cookie.sameSite 'lax'" : '')
        }
  }
}
