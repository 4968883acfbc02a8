export {
  ConfigError,
  HandlerError,
  LeaseLostError,
  LeftError,
  ParamMismatchError,
  RedisUnavailableError,
  ScriptError,
  UnderstudyError,
  type UnderstudyErrorCode,
} from './errors.js';
