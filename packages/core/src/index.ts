export { type AclOptions, type AclUser, aclRules, MEMBER_COMMANDS, MONITOR_COMMANDS } from './acl.js';
export { forgetGroup, type GroupAdminOptions, type SetActiveGoalOptions, setActiveGoal } from './admin.js';
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
  RedisUnavailableError,
  ScriptError,
  UnderstudyError,
  type UnderstudyErrorCode,
} from './errors.js';
export type { FeedData, FeedMessage, JsonValue } from './feed/encoding.js';
export { FEED_DEFAULTS, type PublishOptions, publish } from './feed/publish.js';
export type { Clock } from './member/clock.js';
export { joinGroup } from './member/join.js';
export type { Member } from './member/member.js';
export type * from './member/types.js';
export type { Transition, TransitionType } from './monitor/history.js';
export { type Monitor, type MonitorEvents, type MonitorOptions, monitorGroup } from './monitor/monitor.js';
export type { GroupSnapshot, MonitoredMember, MonitoredState } from './monitor/observe.js';
export { describeGroup, listGroups, type ReadOptions, readHistory } from './monitor/read.js';
export { MEMBER_DEFAULTS } from './options.js';
