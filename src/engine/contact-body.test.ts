import { describe, expect, it } from 'vitest';
import { contactBody, listChanges } from './contact-body.js';
import { mergeContactPayload } from '../core/plan.js';

const ledger = { email: 'a@x.io', attrs: { SES_LAST_DELIVERED_AT: 100, 'list:L / t': 50 }, blocklisted: true };

describe('contactBody and a rewrite (reconcile --fix)', () => {
  it('sends nothing the ledger already holds, unless the payload is a rewrite', () => {
    const p = { attrs: { SES_LAST_DELIVERED_AT: { v: '2026-01-01', at: 100 } }, blocklist: true, lists: { 'L / t': { v: true, at: 50 } } };
    expect(contactBody('a@x.io', p, ledger)).toEqual({ email: 'a@x.io' });
    expect(listChanges(p, ledger)).toEqual({ add: [], remove: [] });
    const r = { ...p, rewrite: true as const };
    expect(contactBody('a@x.io', r, ledger)).toEqual({ email: 'a@x.io', attributes: { SES_LAST_DELIVERED_AT: '2026-01-01' }, emailBlacklisted: true });
    expect(listChanges(r, ledger)).toEqual({ add: ['L / t'], remove: [] });
  });

  it('a rewrite still never sends a value older than the ledger', () => {
    const r = { attrs: { SES_LAST_DELIVERED_AT: { v: '2025-01-01', at: 99 } }, blocklist: false, rewrite: true as const };
    expect(contactBody('a@x.io', r, ledger)).toEqual({ email: 'a@x.io' });
  });

  it('a merged payload stays a rewrite', () => {
    const m = mergeContactPayload({ attrs: {}, blocklist: false }, { attrs: {}, blocklist: true, rewrite: true });
    expect(m.rewrite).toBe(true);
    expect(mergeContactPayload({ attrs: {}, blocklist: false }, { attrs: {}, blocklist: false }).rewrite).toBeUndefined();
  });
});
