export { runTypeScript } from './node.js';
export { RedisBinaryMissingError, redisServerBinary } from './redis/binary.js';
export { freePort } from './redis/ports.js';
export { liveServerCount, stopAllRedis, sweepLeftovers, testkitRoot } from './redis/registry.js';
export { plainRedis, startRedis } from './redis/start.js';
export type { RedisServer, RestartOptions, StartRedisOptions } from './redis/types.js';
export { type ChaosProxy, type ChaosProxyOptions, startChaosProxy } from './chaos/proxy.js';
