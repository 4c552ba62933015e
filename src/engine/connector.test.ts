import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { SqliteStore } from '../store/sqlite/index.js';
import { createConnector } from './connector.js';
import { TajoError } from '../core/errors.js';

describe('createConnector', () => {
  it('waitIdle rejects with the coded wait_idle_timeout, and the count, when work stays open', async () => {
    const store = new SqliteStore(':memory:');
    const c = await createConnector(
      { connectors: { 'amazon-ses': { region: 'us-east-1' } }, brevo: { api_key: 'k' } },
      { store, logger: pino({ level: 'silent' }), ensureAttributes: false },
    );
    await store.migrate();
    // Not started: nothing plans the stored envelope.
    await store.insertInbox([{ messageId: 'm1', source: 'sns', receivedAt: 0, body: '{}' }]);
    const err = await c.waitIdle(50).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TajoError);
    expect(err).toMatchObject({ code: 'wait_idle_timeout', retryable: true, details: { open: 1 } });
    await c.stop();
  });
});
