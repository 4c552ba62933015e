// Issue 11, finding 8: `serve` prunes the inbox by store.retention. With `bodies: 1s` the raw
// bodies of delivered messages go within a pass or two; the message ids stay (dedupe_keys
// 1d), so SNS replaying one is still a duplicate and reaches Brevo no second time; `status`
// (text and --json) shows what the inbox holds and the last prune.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { realisticMix } from '../src/sim/ses-events/index.js';
import type { StatusReport } from '../src/engine/status.js';
import { ALL_EVENTS_BOTH, TOPIC, freePort, spawnRealtimeServe, until, untilBrevoMatches, useSims, type ServeProcess } from './helpers.js';
import { cleanEnv, ensureBuilt, runCli } from './cli-run.js';

describe('serve with store.retention', () => {
  const sims = useSims({ brevo: { plan: 'unlimited' }, sns: {}, tmpDir: 'tajo-retention-' });
  let serve: ServeProcess | undefined;
  beforeAll(() => ensureBuilt());
  afterAll(() => {
    serve?.child.kill('SIGKILL');
  });

  const status = (...flags: string[]) =>
    runCli(['status', '--config', join(sims.dir, 'ret.yaml'), ...flags], { cwd: sims.dir, env: cleanEnv(sims.dir, { BREVO_API_KEY: 'x' }) });

  it('drops the bodies of delivered messages after `bodies`, keeps their ids for dedupe, and shows it in status', async () => {
    const port = await freePort();
    serve = spawnRealtimeServe(sims, {
      name: 'ret',
      port,
      apiKey: sims.brevo.apiKey,
      store: { retention: { bodies: '1s', dedupe_keys: '1d', every: '300ms' } },
    });
    await serve.ready(port);
    const url = `http://127.0.0.1:${port}/webhooks/amazon-ses`;

    const payloads = realisticMix(40, { recipients: 10, seed: 11 });
    const envelopes = payloads.map((p) => sims.sns.notification(TOPIC, p));
    for (const env of envelopes) expect((await sims.sns.publish(url, env)).status).toBe(200);
    await untilBrevoMatches(sims.brevo, payloads, { policy: ALL_EVENTS_BOTH, what: 'Brevo to hold every event', timeoutMs: 30_000 });
    const eventsBefore = sims.brevo.state().events.length;

    const pruned = await until(
      async () => {
        const s = JSON.parse((await status('--json')).stdout) as StatusReport;
        return s.retention.bodies === 0 && (s.retention.lastPass?.lastPrune?.bodies ?? 0) > 0 ? s : undefined;
      },
      'status to show every body dropped',
      30_000,
      300,
    );
    expect(pruned!.retention).toMatchObject({ rows: 40, bodies: 0, oldestBodyAt: null, lastPass: { policy: { bodiesMs: 1000, dedupeKeysMs: 86_400_000 } } });
    // Over one or several passes, every body went and no row did (ids are kept for a day).
    expect(pruned!.retention.lastPass!.lastPrune!.rows).toBe(0);
    expect(serve.logs()).toMatch(/inbox retention: dropped old message bodies/);

    // SNS replays messages whose bodies are gone: acknowledged as duplicates, nothing new in Brevo.
    for (const env of envelopes.slice(0, 10)) {
      const res = await sims.sns.publish(url, env);
      expect([res.status, JSON.parse(res.body).outcome]).toEqual([200, 'duplicate']);
    }
    const text = (await status()).stdout;
    expect(text).toMatch(/Inbox retention: 40 message id\(s\) held \(a replay of one is a duplicate\), 0 with their raw body; oldest body: none/);
    expect(text).toMatch(/last pass: \S+ \(bodies kept 1\.0s, message ids 1d0h\); last prune: \S+, \d+ body\(ies\) and 0 row\(s\) dropped/);
    // A fresh message still goes through, and loses its body in turn.
    const fresh = realisticMix(1, { recipients: 1, seed: 12 });
    expect((await sims.sns.publish(url, sims.sns.notification(TOPIC, fresh[0]!))).status).toBe(200);
    await until(async () => sims.brevo.state().events.length > eventsBefore, 'the fresh message in Brevo', 20_000);
    await until(async () => (JSON.parse((await status('--json')).stdout) as StatusReport).retention.rows === 41, 'the fresh row', 10_000, 200);
    await until(async () => (JSON.parse((await status('--json')).stdout) as StatusReport).retention.bodies === 0, 'the fresh body dropped', 20_000, 300);

    serve.child.kill('SIGTERM');
    expect(await serve.exited()).toBe(0);
    serve = undefined;
  });
});
