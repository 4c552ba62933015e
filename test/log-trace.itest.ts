// log.level debug traces every Brevo and SES call: method or operation, route, status, ms,
// request id; never the API key, a credential or a contact address.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { GetAccountCommand, ListContactListsCommand } from '@aws-sdk/client-sesv2';
import { BrevoClient, routeOf } from '../src/brevo/client.js';
import { createSesClient } from '../src/ses/client.js';
import { parseConfig } from '../src/config/load.js';
import { startBrevoSim, type BrevoSim } from '../src/sim/brevo/index.js';
import { startSesSim, type SesSim } from '../src/sim/ses/index.js';
import { CREDS } from './backfill-helpers.js';

let brevo: BrevoSim;
let ses: SesSim;
beforeAll(async () => {
  brevo = await startBrevoSim({ plan: 'extended' });
  ses = await startSesSim({ rps: 50 });
});
afterAll(async () => {
  await brevo?.close();
  await ses?.close();
});

/** A pino logger at `level` whose lines land in `lines` (and their raw text in `raw`). */
function capture(level: string) {
  const lines: Array<Record<string, unknown>> = [];
  const raw: string[] = [];
  const log = pino(
    { level, base: undefined },
    {
      write: (s: string) => {
        raw.push(s);
        lines.push(JSON.parse(s) as Record<string, unknown>);
      },
    },
  );
  return { log, lines, raw: () => raw.join('') };
}

describe('debug traces of outside calls', () => {
  it('routeOf hides contact identifiers and the query', () => {
    expect(routeOf('/contacts/alice%40example.com?identifierType=email_id')).toBe('/contacts/{identifier}');
    expect(routeOf('/contacts/alice@example.com')).toBe('/contacts/{identifier}');
    expect(routeOf('/processes/123')).toBe('/processes/{id}');
    expect(routeOf('/contacts/folders/7/lists?limit=50&offset=0')).toBe('/contacts/folders/{id}/lists');
  });

  it('Brevo: one debug line per call, successes and failures, without the key or an address', async () => {
    const c = capture('debug');
    const client = new BrevoClient({ baseUrl: brevo.url, apiKey: brevo.apiKey, timeoutMs: 5000, log: c.log });
    await client.upsertContact({ email: 'trace.me@example.com', attributes: {} });
    await client.request('GET', `/contacts/${encodeURIComponent('trace.me@example.com')}`);
    brevo.setFaults({ errorRate: 1 });
    await expect(client.getAccount()).rejects.toThrow();
    brevo.setFaults({ errorRate: 0 });
    const calls = c.lines.filter((l) => l.msg === 'Brevo call');
    expect(calls.map((l) => [l.level, l.call, l.method, l.route, l.status])).toEqual([
      [20, 'brevo', 'POST', '/contacts', 201],
      [20, 'brevo', 'GET', '/contacts/{identifier}', 200],
      [20, 'brevo', 'GET', '/account', expect.any(Number)],
    ]);
    expect(calls[2]!.status as number).toBeGreaterThanOrEqual(500);
    for (const l of calls) expect(l.ms).toEqual(expect.any(Number));
    expect(c.raw()).not.toContain(brevo.apiKey);
    expect(c.raw()).not.toContain('trace.me');
  });

  it('Brevo: nothing at info level', async () => {
    const c = capture('info');
    await new BrevoClient({ baseUrl: brevo.url, apiKey: brevo.apiKey, log: c.log }).getAccount();
    expect(c.lines).toEqual([]);
  });

  it('SES: one debug line per command with its status, attempts and request id, without credentials', async () => {
    const c = capture('debug');
    const cfg = parseConfig(
      { connectors: { 'amazon-ses': { region: 'us-east-1', endpoint: ses.endpoint, sns: { topic_arns: [] } } }, brevo: { api_key: 'k' } },
      { env: {}, requireBrevoKey: false },
    ).connectors['amazon-ses'];
    const { client } = createSesClient(cfg, { credentials: CREDS, log: c.log, maxAttempts: 1 });
    await client.send(new GetAccountCommand({}));
    await client.send(new ListContactListsCommand({}));
    const calls = c.lines.filter((l) => l.msg === 'SES call');
    expect(calls.map((l) => [l.call, l.operation, l.status, l.attempts])).toEqual([
      ['ses', 'GetAccountCommand', 200, 1],
      ['ses', 'ListContactListsCommand', 200, 1],
    ]);
    for (const l of calls) {
      expect(l.requestId).toEqual(expect.any(String));
      expect(l.ms).toEqual(expect.any(Number));
    }
    expect(c.raw()).not.toContain(CREDS.secretAccessKey);
    expect(c.raw()).not.toContain(CREDS.accessKeyId);
  });
});
