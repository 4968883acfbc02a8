import { ConfigError } from '../errors.js';

/** A stream entry id as Redis writes it: `<ms>-<seq>`, two unsigned 64-bit decimal integers. */
const STREAM_ID = /^(0|[1-9][0-9]{0,19})-(0|[1-9][0-9]{0,19})$/;

/** The id before every entry: reading after it reads the whole feed. */
export const FEED_START = '0-0';

export function validateStreamId(field: string, id: unknown): string {
  if (typeof id !== 'string' || !STREAM_ID.test(id)) {
    throw new ConfigError(field, id, 'must be a stream entry id <ms>-<seq>, as publish returns it');
  }
  return id;
}

/** Negative if `a` comes before `b` in a stream, 0 if equal, positive if after. */
export function compareStreamIds(a: string, b: string): number {
  const [aMs = '', aSeq = ''] = a.split('-');
  const [bMs = '', bSeq = ''] = b.split('-');
  return compareDecimal(aMs, bMs) || compareDecimal(aSeq, bSeq);
}

/** Decimal integers without leading zeros, beyond 2^53: the longer one is larger. */
function compareDecimal(a: string, b: string): number {
  if (a.length !== b.length) return a.length - b.length;
  return a < b ? -1 : a > b ? 1 : 0;
}
