// What every session variant shares, so they differ in the plugin only.

/** Same length for every plugin's secret. */
export const SECRET = 'bench-secret-of-forty-four-characters-000000'
/** Same cookie name wherever the plugin lets us choose. */
export const COOKIE_NAME = 'session'
