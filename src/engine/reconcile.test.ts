import { describe, expect, it } from 'vitest';
import { compareContact, correction } from './reconcile.js';
import { PRIORITY } from '../core/plan.js';

const AT = Date.parse('2026-03-04T05:06:07Z');
const entry = { email: 'a@x.io', attrs: { SES_LAST_DELIVERED_AT: AT, SES_SUPPRESSED: AT, SES_LAST_EVENT: AT, 'list:L / t': AT }, blocklisted: true };

describe('compareContact', () => {
  it('no drift when Brevo holds the blocklist, the day of each date and SES_SUPPRESSED true', () => {
    const b = { email: 'a@x.io', emailBlacklisted: true, attributes: { SES_LAST_DELIVERED_AT: '2026-03-04', SES_SUPPRESSED: true, SES_LAST_EVENT: 'other' } };
    expect(compareContact(entry, b)).toEqual([]);
  });

  it('reports each kind; values the ledger does not determine (text) are not compared', () => {
    expect(compareContact(entry, { email: 'a@x.io', emailBlacklisted: false, attributes: { SES_SUPPRESSED: false } })).toEqual([
      { kind: 'blocklist_missing', email: 'a@x.io', ours: true, brevo: false },
      { kind: 'attribute_older', email: 'a@x.io', attribute: 'SES_LAST_DELIVERED_AT', ours: '2026-03-04', brevo: null },
      { kind: 'attribute_different', email: 'a@x.io', attribute: 'SES_SUPPRESSED', ours: true, brevo: false },
    ]);
    const later = compareContact(
      { ...entry, blocklisted: false },
      { email: 'a@x.io', attributes: { SES_LAST_DELIVERED_AT: '2027-01-01', SES_SUPPRESSED: true } },
    );
    expect(later).toEqual([{ kind: 'attribute_different', email: 'a@x.io', attribute: 'SES_LAST_DELIVERED_AT', ours: '2026-03-04', brevo: '2027-01-01' }]);
  });

  it('a missing contact is drift only when the connector wrote it something checkable', () => {
    expect(compareContact(entry, undefined)).toEqual([{ kind: 'contact_missing', email: 'a@x.io' }]);
    expect(compareContact({ email: 'b@x.io', attrs: { SES_LAST_EVENT: AT, 'list:L': AT }, blocklisted: false }, undefined)).toEqual([]);
  });
});

describe('correction', () => {
  it('rewrites what drifted, at the ledger times, blocklisting first; list joins by id', () => {
    const drifts = compareContact(entry, { email: 'a@x.io', emailBlacklisted: false, attributes: { SES_SUPPRESSED: true } });
    const op = correction(entry, 'a@x.io', [...drifts, { kind: 'list_missing', email: 'a@x.io', list: 'L' }], [7, 7]);
    expect(op).toMatchObject({ kind: 'contact', key: 'contact:a@x.io', lane: 'backfill', priority: PRIORITY.blocklist });
    expect(op.payload).toEqual({ attrs: { SES_LAST_DELIVERED_AT: { v: '2026-03-04', at: AT } }, blocklist: true, rewrite: true, listIds: [7] });
  });

  it('a missing contact gets the blocklist and every checkable value again', () => {
    const op = correction(entry, 'a@x.io', [{ kind: 'contact_missing', email: 'a@x.io' }], []);
    expect(op.payload).toEqual({
      attrs: { SES_LAST_DELIVERED_AT: { v: '2026-03-04', at: AT }, SES_SUPPRESSED: { v: true, at: AT } },
      blocklist: true,
      rewrite: true,
    });
  });
});
