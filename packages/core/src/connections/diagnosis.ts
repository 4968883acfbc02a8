import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { redact } from '../failures.js';
import type { RedisSource } from './settings.js';

/** Where a source points, for messages, without credentials. */
export function describeSource(source: RedisSource): string {
  if (typeof source === 'string') return redact(source);
  if (source instanceof Cluster) return 'the Redis Cluster';
  const o = source instanceof Redis ? source.options : source;
  return `${o.host ?? 'localhost'}:${o.port ?? 6379}`;
}

/** The Redis user a source (or a connection opened from it) logs in as. */
export function redisUser(source: RedisSource): string {
  if (typeof source === 'string') {
    try {
      return decodeURIComponent(new URL(source).username) || 'default';
    } catch {
      return 'default';
    }
  }
  if (source instanceof Cluster) return source.options.redisOptions?.username || 'default';
  const options = source instanceof Redis ? source.options : source;
  return options.username || 'default';
}

/** Node's codes for a server certificate that no trusted CA signed. */
const UNTRUSTED_CERTIFICATE = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
]);

function tlsOptionsOf(source: RedisSource): RedisOptions['tls'] | undefined {
  if (typeof source === 'string') return /^rediss:/i.test(source) ? {} : undefined;
  if (source instanceof Cluster) return source.options.redisOptions?.tls;
  return (source instanceof Redis ? source.options : source).tls;
}

/** What to do about a TLS failure, for the error message; empty for other failures. */
export function tlsHint(cause: unknown, source: RedisSource): string {
  const tls = tlsOptionsOf(source);
  if (!tls) return '';
  const code = (cause as { code?: unknown } | undefined)?.code;
  const message = cause instanceof Error ? cause.message : '';
  if (typeof code === 'string' && UNTRUSTED_CERTIFICATE.has(code)) {
    return (
      " (TLS: the server's certificate is not signed by a CA this client trusts; give the CA's " +
      'certificate as tls.ca, or --tls-ca on the command line)'
    );
  }
  // The server refuses a client certificate either by closing the socket or, when the alert
  // reaches the client first, with an alert: which one the client sees is a matter of timing.
  const refusedDuringHandshake =
    code === 'ECONNRESET' ||
    code === 'EPIPE' ||
    /certificate required|alert (unknown ca|bad certificate|certificate unknown)/i.test(message);
  if (!refusedDuringHandshake) return '';
  const closed =
    ' (TLS: the server closed the connection during the handshake; if it requires client certificates (tls-auth-clients), ';
  return typeof tls === 'object' && tls.cert
    ? `${closed}it did not accept this one: is it signed by a CA the server trusts (tls-ca-cert-file)?)`
    : `${closed}give one: tls.cert and tls.key, or --tls-cert and --tls-key)`;
}
