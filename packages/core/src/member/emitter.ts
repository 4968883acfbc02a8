import type { Logger } from 'pino';
import { HandlerError, type MemberExistsError, ParamMismatchError } from '../errors.js';
import { describe } from '../failures.js';
import { Participant } from '../participant.js';
import type { Outcome } from './actions.js';
import type { Advise } from './health.js';
import type { Advisory, AdvisoryCode, MemberEvents, MemberState } from './types.js';

/** The transitions a member may make; anything else is a bug and throws. */
const TRANSITIONS: Readonly<Record<MemberState, readonly MemberState[]>> = Object.freeze({
  standby: ['preparing', 'active', 'leaving'],
  preparing: ['standby', 'active', 'leaving'],
  active: ['standby', 'leaving'],
  leaving: ['left'],
  left: [],
});

/**
 * What a member shows its application: the visible `state`, changed in one method that checks
 * the transition table, logs and emits it; advisories; and events that no listener can break.
 */
export abstract class MemberEmitter extends Participant<MemberEvents> {
  readonly group: string;
  readonly id: string;
  protected readonly log: Logger;
  #state: MemberState = 'standby';

  protected constructor(group: string, id: string, log: Logger) {
    super();
    this.group = group;
    this.id = id;
    this.log = log;
  }

  /** 'standby' | 'preparing' | 'active' | 'leaving' | 'left' */
  get state(): MemberState {
    return this.#state;
  }

  protected transition(to: MemberState): void {
    const from = this.#state;
    if (from === to) return;
    if (!TRANSITIONS[from].includes(to)) {
      throw new Error(`understudy bug: member ${this.id} cannot go from ${from} to ${to}`);
    }
    this.#state = to;
    this.log.debug({ from, to }, 'state');
    this.emitSafe('state', { from, to });
  }

  /** Logs an advisory and emits it; a bound function, so the member's parts can be handed it. */
  protected readonly advise: Advise = (code, message, details) => {
    const fields: { code: AdvisoryCode } = { code, ...details };
    this.log.warn(fields, message);
    this.emitSafe('advisory', { ...fields, message, group: this.group, member: this.id } as Advisory);
  };

  /** `error` is emitted only where someone listens: an unheard `error` event would end the process. */
  protected reportError(error: Error): void {
    if (this.listenerCount('error') > 0) this.emitSafe('error', error);
  }

  /** Listeners must not break the member: a throwing listener is logged and reported. */
  protected emitSafe<E extends keyof MemberEvents>(event: E, ...args: MemberEvents[E]): void {
    try {
      (this.emit as (event: E, ...args: MemberEvents[E]) => boolean)(event, ...args);
    } catch (error) {
      this.log.error({ event, error: describe(error) }, 'an event listener threw');
      if (event !== 'error' && this.listenerCount('error') > 0) {
        this.emitSafe('error', error instanceof Error ? error : new Error(String(error)));
      }
    }
  }

  /** A handler that threw or timed out: logged, an advisory on timeout, and `error` for whoever listens. */
  protected handlerFailed(action: HandlerError['action'], outcome: Outcome): void {
    if (outcome.ok) return;
    if (outcome.timedOut) {
      this.advise('HANDLER_TIMEOUT', `the ${action} handler did not settle within the activation interval`, {
        action,
      });
    }
    this.log.error({ action, error: describe(outcome.error) }, `${action} handler failed`);
    const error = new HandlerError(action, `${action} handler failed: ${describe(outcome.error)}`, {
      cause: outcome.error,
    });
    this.reportError(error);
  }

  /**
   * The group no longer takes this member object: it runs with other parameters now (its
   * members all left, or its config was lost, and a member with other parameters formed it
   * again), or another object holds the id (this one was dropped meanwhile). It stops and leaves.
   */
  protected expelled(error: ParamMismatchError | MemberExistsError): void {
    if (error instanceof ParamMismatchError) {
      this.advise('PARAM_MISMATCH', error.message, {
        field: error.field,
        requested: error.requested,
        current: error.current,
      });
    } else {
      this.log.error({ error: error.message }, 'another member object holds this id now; leaving');
    }
    this.reportError(error);
    void this.leave();
  }
}
