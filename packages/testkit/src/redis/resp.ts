import { connect } from 'node:net';

/**
 * Sends one command over a fresh TCP connection and returns the first reply line
 * (`+OK`, `-ERR …`, `$5`, `:1`). Enough to probe readiness and run admin commands
 * without a client library, and it works on a server whose users a test restricted.
 */
export function rawCommand(
  port: number,
  args: readonly string[],
  options: { auth?: readonly string[]; timeoutMs?: number } = {},
): Promise<string> {
  const commands = options.auth ? [['AUTH', ...options.auth], args] : [args];
  const payload = commands.map(encode).join('');
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let buffered = '';
    let linesWanted = commands.length;
    const fail = (error: Error) => {
      socket.destroy();
      reject(error);
    };
    socket.setTimeout(options.timeoutMs ?? 1000, () =>
      fail(new Error(`no reply from 127.0.0.1:${port} to ${args[0]}`)),
    );
    socket.on('error', fail);
    socket.on('connect', () => socket.write(payload));
    socket.on('data', (chunk) => {
      buffered += chunk.toString('utf8');
      let newline = buffered.indexOf('\r\n');
      while (newline !== -1) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 2);
        linesWanted -= 1;
        if (linesWanted === 0 || line.startsWith('-')) {
          socket.destroy();
          resolve(line);
          return;
        }
        newline = buffered.indexOf('\r\n');
      }
    });
  });
}

function encode(args: readonly string[]): string {
  return `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
}
