// A chaos proxy to Redis in a process of its own, so that the run churn can SIGSTOP it (a
// proxy frozen mid-stream: nothing passes, nobody sees a connection close) and SIGCONT it.
//   node --import tsx test/chaos/proxy-process.ts <host> <port>
// Prints `listening <port>` once it accepts connections; stops on SIGTERM.
import { startChaosProxy } from '../../packages/testkit/src/index.js';

const [host, port] = process.argv.slice(2);
const proxy = await startChaosProxy({ target: { host: host ?? '127.0.0.1', port: Number(port) } });
process.stdout.write(`listening ${proxy.port}\n`);
process.once('SIGTERM', () => void proxy.close().then(() => process.exit(0)));
