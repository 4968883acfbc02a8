export {
  type AclOptions,
  type AclUser,
  aclRules,
  ENQUEUER_COMMANDS,
  MEMBER_COMMANDS,
  MONITOR_COMMANDS,
  QUEUE_MONITOR_COMMANDS,
  type QueueAclOptions,
  queueAclRules,
  WORKER_COMMANDS,
} from './acl.js';
export {
  forgetGroup,
  type GroupAdminOptions,
  type LoadedLibrary,
  type LoadFunctionsOptions,
  loadFunctions,
  type SetActiveGoalOptions,
  setActiveGoal,
} from './admin.js';
export type { RedisSource } from './connections/settings.js';
export {
  ActivationEndedError,
  ConfigError,
  CorruptStateError,
  HandlerError,
  LeftError,
  MemberExistsError,
  MonitorNotStartedError,
  ParamMismatchError,
  PermissionError,
  type ProcessRole,
  RedisUnavailableError,
  RoleConflictError,
  ScriptError,
  StaleTaskError,
  UnderstudyError,
  type UnderstudyErrorCode,
} from './errors.js';
export type { FeedData, FeedMessage, JsonValue } from './feed/encoding.js';
export { FEED_DEFAULTS, type PublishOptions, publish } from './feed/publish.js';
export type { Clock } from './member/clock.js';
export type { Member } from './member/join.js';
export { joinGroup } from './member/join.js';
export type * from './member/types.js';
export { type Monitor, monitorGroup } from './monitor/group.js';
export type { Transition, TransitionType } from './monitor/history.js';
export type { MonitorEvents, MonitorOptions } from './monitor/monitor.js';
export type { GroupSnapshot, MonitoredMember, MonitoredState } from './monitor/observe.js';
export {
  describeGroup,
  type GroupReadOptions,
  listGroups,
  type ReadOptions,
  readHistory,
} from './monitor/read.js';
export { MEMBER_DEFAULTS } from './options.js';
export { enqueue } from './queue/enqueue.js';
export { type QueueKeys, queueKeys } from './queue/keys.js';
export {
  type MonitorQueueOptions,
  monitorQueue,
  QueueMonitor,
  type QueueMonitorEvents,
  readQueue,
} from './queue/monitor.js';
export { QUEUE_DEFAULTS } from './queue/options.js';
export { describeQueue, listQueues } from './queue/read.js';
export type * from './queue/types.js';
export { joinQueue, QueueWorker } from './queue/worker.js';
export type {
  QuorumGoalChange,
  QuorumGroupSnapshot,
  QuorumTransition,
  ServerReach,
} from './quorum-admin.js';
