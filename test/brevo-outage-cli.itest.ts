// Issue 12, point 4: Brevo down for 30 s while events keep flowing into a real `serve`:
// one log line when the outage starts and one when it ends, `status --check` exits 1 during
// it (the lag grows) and 0 after, and every acknowledged event reaches Brevo.
import { describe, it, expect, afterEach } from 'vitest';
import { realisticMix } from '../src/sim/ses-events/index.js';
import { ALL_EVENTS_BOTH, TOPIC, freePort, spawnServe, until, untilBrevoMatches, useSims, writeServeConfig, type ServeProcess } from './helpers.js';
import { ensureBuilt, runCli } from './cli-run.js';

ensureBuilt();

const OUTAGE_MS = 30_000;
const STREAK_START = /"msg":"Brevo call failing/g;
const STREAK_END = /"msg":"Brevo answers again/g;

describe('a 30 s Brevo outage seen from the command line', () => {
  const sims = useSims({ brevo: { plan: 'unlimited', importDelayMs: 20 }, sns: {}, tmpDir: 'tajo-outage-cli-' });
  let serve: ServeProcess | undefined;
  afterEach(() => {
    serve?.child.kill('SIGKILL');
    serve = undefined;
    sims.brevo.setFaults({ errorRate: 0 });
  });

  it('logs its start and its end once, status --check exits 1 during it and 0 after, and nothing is lost', async () => {
    const port = await freePort();
    const config = writeServeConfig({
      dir: sims.dir,
      name: 'outage',
      port,
      brevo: { url: sims.brevo.url, apiKey: sims.brevo.apiKey, plan: 'extended' },
      ses: { sync: { contacts: false, suppressions: false, account: false } },
      delivery: { backoff_base: '200ms', backoff_max: '2s', max_attempts: 100 },
    });
    serve = spawnServe(config);
    await serve.ready(port);
    const check = () => runCli(['status', '--check', '--max-lag', '5', '--config', config], { cwd: sims.dir });

    const payloads = realisticMix(60, { recipients: 20, seed: 11 });
    const post = async (p: Record<string, unknown>) => {
      const res = await sims.sns.publish(`http://127.0.0.1:${port}/webhooks/amazon-ses`, sims.sns.notification(TOPIC, p));
      expect(res.status).toBe(200);
    };
    for (const p of payloads.slice(0, 10)) await post(p);
    await untilBrevoMatches(sims.brevo, payloads.slice(0, 10), { policy: ALL_EVENTS_BOTH, what: 'the first events in Brevo', timeoutMs: 30_000 });
    expect((await check()).code).toBe(0);

    sims.brevo.setFaults({ errorRate: 1 });
    const downAt = Date.now();
    // Events keep arriving through the outage, about one a second.
    let next = 10;
    let during: Awaited<ReturnType<typeof check>> | undefined;
    while (Date.now() - downAt < OUTAGE_MS) {
      if (next < payloads.length) await post(payloads[next++]!);
      if (!during && Date.now() - downAt > 15_000) during = await check();
      await new Promise((r) => setTimeout(r, 600));
    }
    for (; next < payloads.length; next++) await post(payloads[next]!);
    sims.brevo.setFaults({ errorRate: 0 });

    expect(during?.code, during?.stdout).toBe(1);
    expect(during?.stdout).toMatch(/NEEDS AN OPERATOR: .*lag \d+ s is over 5 s/);
    expect(serve.logs().match(STREAK_START)).toHaveLength(1);

    await untilBrevoMatches(sims.brevo, payloads, { policy: ALL_EVENTS_BOTH, what: 'every acknowledged event in Brevo after the outage', timeoutMs: 60_000 });
    await until(async () => (await check()).code === 0, 'status --check to exit 0 once Brevo delivered everything', 30_000, 500);
    await until(() => (serve!.logs().match(STREAK_END)?.length ?? 0) > 0, 'the line that says the outage ended');
    expect(serve.logs().match(STREAK_START)).toHaveLength(1);
    expect(serve.logs().match(STREAK_END)).toHaveLength(1);
    const status = JSON.parse((await runCli(['status', '--json', '--config', config], { cwd: sims.dir })).stdout) as { deadLetters: number };
    expect(status.deadLetters).toBe(0);
  }, 180_000);
});
