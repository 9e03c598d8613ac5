import { randomBytes } from 'node:crypto'

/** What an online shop keeps in a session: who is logged in, their roles, a CSRF token and a small cart (~280 bytes of JSON). */
export function shopSession (i) {
  return {
    user: { id: `u_${100000 + i}`, name: 'Ada Lovelace' },
    roles: ['customer', 'newsletter'],
    _csrf: randomBytes(18).toString('base64url'),
    cart: [
      { sku: 'SKU-10452', quantity: 1, price: 1999 },
      { sku: 'SKU-20071', quantity: 2, price: 450 },
      { sku: 'SKU-31337', quantity: 1, price: 12900 }
    ]
  }
}
