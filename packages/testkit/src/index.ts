export type { LinkFaults } from './chaos/direction.js';
export { type ChaosProxy, type ChaosProxyOptions, type LinkDirection, startChaosProxy } from './chaos/proxy.js';
export { type CheckOptions, checkHistory } from './history/checker.js';
export { HistoryRecorder, type NewHistoryEvent, readHistory } from './history/recorder.js';
export type * from './history/types.js';
export { maxOverlap } from './intervals.js';
export { runTypeScript } from './node.js';
export { type MetricSample, metricValue, parseMetrics } from './prometheus.js';
export { RedisBinaryMissingError, redisServerBinary } from './redis/binary.js';
export { type ClusterNodeInfo, RedisCluster, type StartClusterOptions, startCluster } from './redis/cluster.js';
export { freePort } from './redis/ports.js';
export {
  QUORUM_SIZES,
  RedisQuorum,
  type StartRedisQuorumOptions,
  startRedisQuorum,
} from './redis/quorum.js';
export { liveServerCount, stopAllRedis, sweepLeftovers, testkitRoot } from './redis/registry.js';
export { ReplicatedPair, startReplicatedPair } from './redis/replicated.js';
export {
  SENTINEL_REPLICATION,
  type SentinelLinks,
  SentinelSet,
  type StartSentinelSetOptions,
  startSentinelSet,
} from './redis/sentinel.js';
export { plainRedis, startRedis } from './redis/start.js';
export { generateTlsFiles, type TlsFiles } from './redis/tls.js';
export { info as redisInfo } from './redis/topology.js';
export type { RedisServer, RestartOptions, StartRedisOptions } from './redis/types.js';
export { AnnouncementRecorder } from './scenario/announcements.js';
export { ScenarioRun } from './scenario/faults.js';
export { runScenario, type Scenario } from './scenario/harness.js';
export { MasterClient } from './scenario/master-client.js';
export { type Convergence, convergenceAfterFaults } from './scenario/measures.js';
export type { GroupIntervals, MemberArgs, MemberCommand, MemberReport } from './scenario/member-args.js';
export { type MemberExit, MemberProcess, type ProcessArgs } from './scenario/member-process.js';
export { clockRateAt, type FaultLog, type LinkScope, QuorumFaults } from './scenario/quorum-faults.js';
export { deriveSeed, Random } from './scenario/random.js';
export { describeResult, formatMs, isSafetyViolation } from './scenario/report.js';
export { type ScriptExchange, type ScriptTap, tappedCluster, tappedRedis } from './scenario/script-tap.js';
export { FencedSink, redisClockOffset, type SinkDecision } from './scenario/sink.js';
export type { MemberConnection, MemberTopology, ScenarioTopology, TopologyKind } from './scenario/topology.js';
export type {
  MemberSpec,
  RunOptions,
  ScenarioOutcome,
  ScenarioResult,
  ScenarioSpec,
  SpawnUntil,
} from './scenario/types.js';
export { parseWorkerArgv, type QueueParams, type WorkerArgs, type WorkerSpec } from './scenario/worker-args.js';
export { hrNow, uniqueGroup, waitFor } from './wait.js';
