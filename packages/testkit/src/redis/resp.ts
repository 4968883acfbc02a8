import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { connect as connectTls } from 'node:tls';
import type { TlsFiles } from './tls.js';

/**
 * Sends one command over a fresh TCP connection and returns its reply as text: status,
 * error and integer replies as their line (`+OK`, `-ERR …`, `:1`), a bulk string as its
 * content (`CLUSTER INFO`, `INFO`), an array as its elements joined by newlines. Enough to
 * probe readiness and run admin commands without a client library, also on a server whose
 * users a test restricted.
 */
export function rawCommand(
  port: number,
  args: readonly string[],
  options: { auth?: readonly string[]; timeoutMs?: number; tls?: TlsFiles } = {},
): Promise<string> {
  const commands = options.auth ? [['AUTH', ...options.auth], args] : [args];
  const { tls } = options;
  return new Promise((resolve, reject) => {
    // Over TLS the kit presents its client certificate, which servers requiring one accept.
    const socket = tls
      ? connectTls({
          host: '127.0.0.1',
          port,
          ca: readFileSync(tls.ca),
          cert: readFileSync(tls.clientCert),
          key: readFileSync(tls.clientKey),
        })
      : connect({ host: '127.0.0.1', port });
    let buffered = Buffer.alloc(0);
    let repliesWanted = commands.length;
    const fail = (error: Error) => {
      socket.destroy();
      reject(error);
    };
    socket.setTimeout(options.timeoutMs ?? 1000, () =>
      fail(new Error(`no reply from 127.0.0.1:${port} to ${args[0]}`)),
    );
    socket.on('error', fail);
    // A server may close the connection without answering (Sentinel kills the clients of a
    // master it turns into a replica; a server going down): that settles the call too.
    socket.on('close', () =>
      reject(new Error(`127.0.0.1:${port} closed the connection before replying to ${args[0]}`)),
    );
    socket.on(tls ? 'secureConnect' : 'connect', () => socket.write(commands.map(encode).join('')));
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      for (;;) {
        const parsed = parse(buffered, 0);
        if (!parsed) return;
        buffered = buffered.subarray(parsed.end);
        repliesWanted -= 1;
        // A failed AUTH is the answer: the command itself would only say NOAUTH.
        if (repliesWanted === 0 || parsed.text.startsWith('-')) {
          socket.destroy();
          resolve(parsed.text);
          return;
        }
      }
    });
  });
}

function encode(args: readonly string[]): string {
  return `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
}

/** One RESP2 reply starting at `at`, or undefined if it is not complete yet. */
function parse(buffer: Buffer, at: number): { text: string; end: number } | undefined {
  const newline = buffer.indexOf('\r\n', at);
  if (newline === -1) return undefined;
  const line = buffer.toString('utf8', at, newline);
  const next = newline + 2;
  switch (line[0]) {
    case '$': {
      const length = Number(line.slice(1));
      if (length < 0) return { text: '', end: next };
      if (buffer.length < next + length + 2) return undefined;
      return { text: buffer.toString('utf8', next, next + length), end: next + length + 2 };
    }
    case '*': {
      const count = Number(line.slice(1));
      const items: string[] = [];
      let end = next;
      for (let i = 0; i < count; i++) {
        const item = parse(buffer, end);
        if (!item) return undefined;
        items.push(item.text);
        end = item.end;
      }
      return { text: items.join('\n'), end };
    }
    default:
      return { text: line, end: next };
  }
}
