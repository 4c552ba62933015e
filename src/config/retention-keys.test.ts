// `store.retention` (issue 11, finding 8): defaults and the floors that keep dedupe working.
import { describe, expect, it } from 'vitest';
import { parseConfig, type ConfigError } from './load.js';

function retention(keys: Record<string, unknown>) {
  return parseConfig({ connectors: { 'amazon-ses': { region: 'us-east-1' } }, brevo: { api_key: 'k' }, store: { retention: keys } }, { env: {} }).store
    .retention;
}

function problems(keys: Record<string, unknown>): string[] {
  try {
    retention(keys);
  } catch (err) {
    return (err as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

const DAY = 86_400_000;

describe('store.retention', () => {
  it('defaults to bodies 7d, dedupe keys 30d, a pass every 10m', () => {
    expect(retention({})).toEqual({ bodies: 7 * DAY, dedupe_keys: 30 * DAY, every: 600_000 });
  });

  it('takes short body retention (down to seconds) and long key retention', () => {
    expect(retention({ bodies: '1s', dedupe_keys: '1d', every: '500ms' })).toEqual({ bodies: 1000, dedupe_keys: DAY, every: 500 });
  });

  it('refuses dedupe keys under a day (EventBridge retries for up to 24 h)', () => {
    expect(problems({ bodies: '1h', dedupe_keys: '23h' })).toEqual([
      'store.retention.dedupe_keys: found "23h"; must be at least 1d: a message id must outlive every retry of its message (SNS: about an hour; EventBridge: up to 24 h)',
    ]);
  });

  it('refuses dedupe keys shorter than bodies', () => {
    expect(problems({ dedupe_keys: '2d' })).toEqual([
      'store.retention.dedupe_keys: found "2d"; must not be shorter than store.retention.bodies (bodies default to 7d)',
    ]);
    expect(retention({ bodies: '2d', dedupe_keys: '2d' }).dedupe_keys).toBe(2 * DAY);
  });

  it('refuses 0 (which would mean no retention at all)', () => {
    expect(problems({ bodies: 0 })[0]).toMatch(/^store\.retention\.bodies: found 0; expected a duration above 0/);
  });
});
