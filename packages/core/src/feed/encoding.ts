import { ConfigError } from '../errors.js';
import { describe } from '../failures.js';

/** A JSON value: what `JSON.parse` returns. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** What a message carries: text, bytes, or a JSON value; the receiver gets back the same kind. */
export type FeedData = string | Buffer | JsonValue;

/** One message of a group's feed. */
export interface FeedMessage {
  /** The stream entry id (`<ms>-<seq>`), in publish order. */
  id: string;
  data: FeedData;
}

/**
 * A feed entry has one field, whose name says what its value is (docs/keys.md): `s` UTF-8
 * text, `b` bytes, `j` JSON text. One field keeps entries small and says the kind without a
 * second lookup.
 */
const TEXT = 's';
const BYTES = 'b';
const JSON_TEXT = 'j';
/** In `u` mode a pair is one code point: only a surrogate without its partner matches. */
const LONE_SURROGATE = /\p{Surrogate}/u;

/** The field name and value of an entry that carries `data`; refuses what would not come back the same. */
export function encodeData(data: unknown): [string, string | Buffer] {
  if (typeof data === 'string') {
    if (LONE_SURROGATE.test(data)) {
      throw new ConfigError(
        'data',
        data,
        'a string must be well-formed UTF-16 (no lone surrogates) to travel as UTF-8',
      );
    }
    return [TEXT, data];
  }
  if (data instanceof Uint8Array) {
    return [BYTES, Buffer.from(data.buffer, data.byteOffset, data.byteLength)];
  }
  if (typeof data === 'number' && !Number.isFinite(data)) {
    throw new ConfigError('data', data, 'a number must be finite (JSON has no NaN or Infinity)');
  }
  let json: string | undefined;
  try {
    json = JSON.stringify(data);
  } catch (error) {
    throw new ConfigError('data', typeof data, `must be a string, a Buffer or a JSON value (${describe(error)})`);
  }
  if (json === undefined) {
    throw new ConfigError('data', typeof data, 'must be a string, a Buffer or a JSON value');
  }
  return [JSON_TEXT, json];
}

/** The data of an entry's fields as Redis returns them (bytes), or undefined if understudy did not write it. */
export function decodeData(fields: readonly Buffer[]): FeedData | undefined {
  if (fields.length !== 2) return undefined;
  const [name, value] = fields as [Buffer, Buffer];
  return decodeValue(name.toString('latin1'), value);
}

/**
 * The data of a value whose field is `name`, as bytes or as text (a script's reply carries text
 * and JSON as text: never bytes, which would not come back the same); undefined if understudy
 * did not write it.
 */
export function decodeValue(name: string, value: Buffer | string): FeedData | undefined {
  switch (name) {
    case TEXT:
      return typeof value === 'string' ? value : value.toString('utf8');
    case BYTES:
      return typeof value === 'string' ? undefined : value;
    case JSON_TEXT:
      try {
        return JSON.parse(typeof value === 'string' ? value : value.toString('utf8')) as JsonValue;
      } catch {
        return undefined;
      }
    default:
      return undefined;
  }
}
