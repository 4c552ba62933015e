import { describe, it, expect } from 'vitest';
import { availabilityHint, parsePostgresUrl, quoteIdent, translate } from './connection.js';
import { TajoError } from '../../core/errors.js';

describe('parsePostgresUrl', () => {
  it('takes the schema out of the URL and keeps the other parameters for pg', () => {
    const t = parsePostgresUrl('postgres://app:pw@db.internal:6543/tajo?schema=ses&sslmode=require');
    expect(t.schema).toBe('ses');
    expect(t.connectionString).toBe('postgres://app:pw@db.internal:6543/tajo?sslmode=require');
    expect(t.label).toBe('app@db.internal:6543/tajo');
  });

  it('defaults to public, and an explicit option wins over the URL', () => {
    expect(parsePostgresUrl('postgresql://u@h/db').schema).toBe('public');
    expect(parsePostgresUrl('postgres://u@h/db?schema=').schema).toBe('public');
    expect(parsePostgresUrl('postgres://u@h/db?schema=a', 'b').schema).toBe('b');
    expect(parsePostgresUrl('postgres://u@h/db?schema=a').connectionString).toBe('postgres://u@h/db');
  });

  it('never repeats the password in its errors', () => {
    for (const url of ['postgres://u:hunter2@[bad/db', 'mysql://u:hunter2@h/db', `postgres://u:hunter2@h/db?schema=${'x'.repeat(64)}`]) {
      let err: unknown;
      try {
        parsePostgresUrl(url);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(TajoError);
      expect((err as TajoError).code).toBe('invalid_store_url');
      expect((err as Error).message).not.toContain('hunter2');
    }
  });
});

describe('quoteIdent', () => {
  it('keeps the name exact, quotes included', () => {
    expect(quoteIdent('Tajo')).toBe('"Tajo"');
    expect(quoteIdent('a"b')).toBe('"a""b"');
  });
});

describe('availability', () => {
  it('tells outages, which a retry may fix, from statement errors, which it cannot', () => {
    expect(availabilityHint(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }), 'u@h:5432/db')).toMatch(
      /running and reachable at u@h:5432\/db/,
    );
    expect(availabilityHint({ code: '28P01', message: 'password authentication failed for user "u"' }, 'u@h:5432/db')).toMatch(/user and password/);
    expect(availabilityHint({ code: '57P01', message: 'terminating connection due to administrator command' }, 'x')).toBeDefined();
    expect(availabilityHint(new Error('Connection terminated unexpectedly'), 'x')).toBeDefined();
    expect(availabilityHint({ code: '23505', message: 'duplicate key' }, 'x')).toBeUndefined();
    expect(availabilityHint({ code: '42P01', message: 'relation "ops" does not exist' }, 'x')).toBeUndefined();
    const t = translate('query failed', Object.assign(new Error('timeout exceeded when trying to connect'), {}), 'u@h:5432/db');
    expect(t).toMatchObject({ code: 'store_unavailable', retryable: true });
  });
});
