import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { forgetTempDir, trackTempDir } from './redis-process.js'

const run = promisify(execFile)

/** Paths of a throw-away PKI, plus the same files' PEM text for ioredis `tls` options. */
export interface TlsFiles {
  dir: string
  caCert: string
  caKey: string
  serverCert: string
  serverKey: string
  clientCert: string
  clientKey: string
  /** A second CA that signed nothing here: trusting only it must fail verification. */
  otherCaCert: string
  pem: {
    ca: string
    caKey: string
    serverCert: string
    serverKey: string
    clientCert: string
    clientKey: string
    otherCa: string
  }
  /** Removes `dir`. */
  remove(): Promise<void>
}

// EC keys: a whole PKI in well under a second, where RSA 2048 takes several.
const newKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']

async function openssl (dir: string, args: string[]): Promise<void> {
  try {
    await run('openssl', args, { cwd: dir })
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? ''
    throw new Error(`openssl ${args[0]} failed: ${stderr || String(err)}`, { cause: err })
  }
}

async function makeCa (dir: string, name: string): Promise<void> {
  await openssl(dir, ['req', '-x509', ...newKey, '-keyout', `${name}.key`, '-out', `${name}.crt`,
    '-days', '7', '-subj', `/CN=fastify-redis-sessions test ${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign'])
}

async function makeLeaf (dir: string, name: string, extensions: string): Promise<void> {
  await openssl(dir, ['req', '-new', ...newKey, '-keyout', `${name}.key`, '-out', `${name}.csr`,
    '-subj', `/CN=${name === 'server' ? 'localhost' : 'test-client'}`])
  await writeFile(join(dir, `${name}.ext`), extensions)
  await openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key',
    '-set_serial', `0x${Date.now().toString(16)}${name === 'server' ? '01' : '02'}`,
    '-days', '7', '-out', `${name}.crt`, '-extfile', `${name}.ext`])
}

/**
 * Creates a CA, a server certificate for 127.0.0.1/localhost (or `serverNames`, the
 * certificate's subjectAltName), a client certificate from the same CA and an unrelated second
 * CA, with `openssl`, in a new temp dir.
 * @example
 * const tls = await makeTlsFiles()
 * const redis = await startRedis({ tls, tlsOnly: true })
 * // a certificate that names the host only, as most do: connecting by IP fails verification
 * const named = await makeTlsFiles({ serverNames: 'DNS:localhost' })
 */
export async function makeTlsFiles ({ serverNames = 'IP:127.0.0.1,DNS:localhost' } = {}): Promise<TlsFiles> {
  const dir = await mkdtemp(join(tmpdir(), 'frs-tls-'))
  trackTempDir(dir)
  const common = 'subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n'
  await Promise.all([makeCa(dir, 'ca'), makeCa(dir, 'other-ca')])
  await Promise.all([
    // Redis presents the server certificate as its client certificate too (replication,
    // sentinel, cluster bus), so it carries both usages.
    makeLeaf(dir, 'server', `${common}extendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=${serverNames}\n`),
    makeLeaf(dir, 'client', `${common}extendedKeyUsage=clientAuth\n`)
  ])
  const path = (file: string): string => join(dir, file)
  const read = async (file: string): Promise<string> => await readFile(path(file), 'utf8')
  const [ca, caKey, serverCert, serverKey, clientCert, clientKey, otherCa] = await Promise.all(
    ['ca.crt', 'ca.key', 'server.crt', 'server.key', 'client.crt', 'client.key', 'other-ca.crt'].map(read))
  return {
    dir,
    caCert: path('ca.crt'),
    caKey: path('ca.key'),
    serverCert: path('server.crt'),
    serverKey: path('server.key'),
    clientCert: path('client.crt'),
    clientKey: path('client.key'),
    otherCaCert: path('other-ca.crt'),
    pem: { ca, caKey, serverCert, serverKey, clientCert, clientKey, otherCa },
    async remove () {
      forgetTempDir(dir)
      await rm(dir, { recursive: true, force: true })
    }
  }
}
