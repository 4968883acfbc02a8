import type { Advisory, AdvisoryCode } from '@understudy/core';
import { describe, expectTypeOf, it } from 'vitest';

// Compile-time checks (the type check of this package fails if they do not hold).

describe('advisory details are typed per code', () => {
  it('narrows an advisory to its code’s details', () => {
    const details = (a: Advisory) => {
      switch (a.code) {
        case 'LEASE_LOST':
        case 'DISABLED':
          return expectTypeOf(a.epoch).toEqualTypeOf<number>();
        case 'PARAM_MISMATCH':
          expectTypeOf(a.field).toEqualTypeOf<'activeGoal' | 'activationInterval' | 'quorum'>();
          return expectTypeOf(a.current).toEqualTypeOf<number>();
        case 'TOO_FEW_ACTIVE':
          return expectTypeOf(a.expected).toEqualTypeOf<number>();
        case 'EVICTION_POLICY':
          // @ts-expect-error: an eviction policy advisory has no epoch
          return a.epoch;
        default:
          return expectTypeOf(a.message).toEqualTypeOf<string>();
      }
    };
    expectTypeOf(details).parameter(0).toHaveProperty('code').toEqualTypeOf<AdvisoryCode>();
  });
});
