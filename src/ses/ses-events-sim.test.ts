// The SES event simulator (src/sim/ses-events) checked through the parser: its payloads must parse
// cleanly and have the documented mix. Kept apart from parse.test.ts because it parses tens of
// thousands of payloads: the mutation run (vitest.mutate.config.ts) leaves it out, since it would
// re-run for every parser mutant while testing the simulator rather than the parser.
import { describe, expect, it } from 'vitest';
import type { SesEventRecord, SesEventType } from '../core/types.js';
import { realisticMix } from '../sim/ses-events/index.js';
import { parseSesNotification } from './parse.js';

describe('sim/ses-events realisticMix', () => {
  it('is deterministic for a seed and differs across seeds', () => {
    const a = realisticMix(500, { recipients: 50, seed: 7 });
    expect(realisticMix(500, { recipients: 50, seed: 7 })).toEqual(a);
    expect(realisticMix(500, { recipients: 50, seed: 8 })).not.toEqual(a);
    expect(realisticMix(0, { recipients: 1, seed: 1 })).toEqual([]);
  });

  it('has the documented mix, one recipient each, in time order, and parses cleanly', () => {
    const n = 20_000;
    const payloads = realisticMix(n, { recipients: 1000, seed: 42, start: new Date('2026-05-01T00:00:00Z') });
    expect(payloads).toHaveLength(n);
    const counts: Record<string, number> = {};
    const byMessage = new Map<string, Map<string, string>>();
    const emails = new Set<string>();
    const keys = new Set<string>();
    let last = '';
    let permanent = 0;
    for (const p of payloads) {
      const parsed = parseSesNotification(p);
      expect(parsed.unknown).toEqual([]);
      expect(parsed.records).toHaveLength(1);
      const r = parsed.records[0] as SesEventRecord;
      counts[r.type] = (counts[r.type] ?? 0) + 1;
      emails.add(r.email);
      keys.add(r.key);
      expect(r.timestamp >= last).toBe(true);
      expect(r.timestamp >= '2026-05-01T00:00:00.000Z').toBe(true);
      last = r.timestamp;
      if (r.type === 'Bounce' && r.details['bounceType'] === 'Permanent') permanent++;
      const times = byMessage.get(r.messageId) ?? new Map<string, string>();
      times.set(r.type, r.timestamp);
      byMessage.set(r.messageId, times);
    }
    const share = (t: SesEventType) => (counts[t] ?? 0) / n;
    expect(share('Send')).toBeCloseTo(0.4, 1);
    expect(share('Delivery')).toBeCloseTo(0.38, 1);
    expect(share('Open')).toBeGreaterThan(0.1);
    expect(share('Open')).toBeLessThan(0.14);
    expect(share('Click')).toBeGreaterThan(0.04);
    expect(share('Click')).toBeLessThan(0.06);
    expect(share('Bounce')).toBeGreaterThan(0.022);
    expect(share('Bounce')).toBeLessThan(0.038);
    expect(share('DeliveryDelay')).toBeGreaterThan(0.009);
    expect(share('DeliveryDelay')).toBeLessThan(0.021);
    expect(share('Complaint')).toBeGreaterThan(0.002);
    expect(share('Complaint')).toBeLessThan(0.009);
    expect(permanent / (counts['Bounce'] ?? 1)).toBeGreaterThan(0.55);
    expect(permanent / (counts['Bounce'] ?? 1)).toBeLessThan(0.78);
    expect(emails.size).toBeGreaterThan(900);
    expect(keys.size).toBe(n);
    for (const times of byMessage.values()) {
      const order = ['Send', 'DeliveryDelay', 'Delivery', 'Open', 'Click'].map((t) => times.get(t)).filter((t) => t !== undefined);
      expect([...order].sort()).toEqual(order);
    }
  });

  it('rejects nonsense sizes with a clear message', () => {
    expect(() => realisticMix(-1, { recipients: 1, seed: 1 })).toThrow(/non-negative integer/);
    expect(() => realisticMix(1, { recipients: 0, seed: 1 })).toThrow(/positive integer/);
  });
});
