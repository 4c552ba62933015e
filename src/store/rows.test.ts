import { describe, it, expect } from 'vitest';
import { mergeLedgerEntry, withClaimDefaults } from './rows.js';

describe('mergeLedgerEntry', () => {
  it('keeps the newest time per attribute, blocklisting only goes up, and leaves its arguments alone', () => {
    const cur = { email: 'a@x.io', attrs: { A: 10, B: 5 }, blocklisted: true };
    const next = { email: 'a@x.io', attrs: { A: 3, B: 6, C: 9 }, blocklisted: false };
    expect(mergeLedgerEntry(cur, next)).toEqual({ email: 'a@x.io', attrs: { A: 10, B: 6, C: 9 }, blocklisted: true });
    expect(cur).toEqual({ email: 'a@x.io', attrs: { A: 10, B: 5 }, blocklisted: true });
    expect(next).toEqual({ email: 'a@x.io', attrs: { A: 3, B: 6, C: 9 }, blocklisted: false });
  });

  it('records an attribute whose name is also an Object method', () => {
    const cur = { email: 'a@x.io', attrs: { A: 1 }, blocklisted: false };
    expect(mergeLedgerEntry(cur, { email: 'a@x.io', attrs: { constructor: 4, toString: 2 }, blocklisted: true }).attrs).toEqual({
      A: 1,
      constructor: 4,
      toString: 2,
    });
  });
});

describe('withClaimDefaults', () => {
  it('claims from every lane at any priority unless told otherwise', () => {
    const q = { kind: 'event' as const, limit: 5, owner: 'w', leaseMs: 1000, now: 1 };
    expect(withClaimDefaults(q)).toEqual({ ...q, lanes: ['realtime', 'backfill'], maxPriority: 99 });
    expect(withClaimDefaults({ ...q, lanes: ['backfill'], maxPriority: 0 })).toMatchObject({ lanes: ['backfill'], maxPriority: 0 });
  });
});
