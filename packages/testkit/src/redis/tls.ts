import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Paths of a test certificate authority and the certificates it signed, all PEM. */
export interface TlsFiles {
  /** The CA's certificate: what a client trusts (`--tls-ca`, ioredis `tls.ca`). */
  readonly ca: string;
  readonly caKey: string;
  /** The server's certificate, for 127.0.0.1 and localhost, and its key. */
  readonly serverCert: string;
  readonly serverKey: string;
  /** A client certificate, for servers that require one (`tls-auth-clients yes`), and its key. */
  readonly clientCert: string;
  readonly clientKey: string;
}

const OPENSSL = process.env.UNDERSTUDY_OPENSSL ?? 'openssl';

function openssl(args: readonly string[], dir: string): void {
  try {
    execFileSync(OPENSSL, args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (error) {
    const stderr = (error as { stderr?: Buffer }).stderr?.toString() ?? '';
    throw new Error(`openssl ${args.slice(0, 2).join(' ')} failed (is openssl installed?): ${stderr || String(error)}`);
  }
}

/**
 * Makes a certificate authority named `name` in `dir`, and a server and a client certificate
 * signed by it (P-256 keys: quick to make, valid for two days). Files already there are kept,
 * so a restarted server presents the same certificate.
 */
export function generateTlsFiles(dir: string, name = 'understudy-test-ca'): TlsFiles {
  const files: TlsFiles = {
    ca: join(dir, `${name}.crt`),
    caKey: join(dir, `${name}.key`),
    serverCert: join(dir, 'server.crt'),
    serverKey: join(dir, 'server.key'),
    clientCert: join(dir, 'client.crt'),
    clientKey: join(dir, 'client.key'),
  };
  if (Object.values(files).every((file) => existsSync(file))) return files;
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(
    ['req', '-x509', '-new', ...key, '-keyout', files.caKey, '-out', files.ca, '-days', '2', '-subj', `/CN=${name}`],
    dir,
  );
  const sign = (cert: string, certKey: string, subject: string, extensions: string) => {
    const csr = `${cert}.csr`;
    const ext = `${cert}.ext`;
    writeFileSync(ext, extensions);
    openssl(['req', '-new', ...key, '-keyout', certKey, '-out', csr, '-subj', subject], dir);
    openssl(
      [
        'x509',
        '-req',
        '-in',
        csr,
        '-CA',
        files.ca,
        '-CAkey',
        files.caKey,
        '-CAcreateserial',
        '-out',
        cert,
        '-days',
        '2',
        '-extfile',
        ext,
      ],
      dir,
    );
  };
  sign(
    files.serverCert,
    files.serverKey,
    '/CN=localhost',
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n',
  );
  sign(files.clientCert, files.clientKey, '/CN=understudy-test-client', 'extendedKeyUsage=clientAuth\n');
  return files;
}
