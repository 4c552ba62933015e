// Intake must not depend on Brevo being up when `serve` starts (issue 11, finding 9): with
// Brevo failing or refusing the key, the webhook still comes up and acknowledges; the
// attribute set-up is retried in the background and delivery waits for it.
import { describe, it, expect, afterEach } from 'vitest';
import { realisticMix } from '../src/sim/ses-events/index.js';
import { SES_ATTRIBUTES } from '../src/core/brevo-model.js';
import { ALL_EVENTS_BOTH, TOPIC, spawnRealtimeServe, untilBrevoMatches, freePort, until, useSims, type ServeProcess } from './helpers.js';
import { ensureBuilt } from './cli-run.js';

ensureBuilt();

/** Waits for /readyz on `port` to show this Brevo set-up state (serve up, whatever Brevo does); its logs on timeout. */
async function upWithBrevo(s: ServeProcess, port: number, brevo: string): Promise<Record<string, unknown> | undefined> {
  return until(
    async () => {
      const r = await readyz(port);
      return r?.brevo === brevo ? r : undefined;
    },
    `serve up with brevo ${brevo}`,
    30_000,
    100,
  ).catch((err: Error) => {
    throw new Error(`${err.message} (logs: ${s.logs().slice(-2000)})`);
  });
}

/** /readyz of a serve on `port` once it answers (serve is up). */
async function readyz(port: number): Promise<Record<string, unknown> | undefined> {
  const res = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined);
  return res?.ok ? ((await res.json()) as Record<string, unknown>) : undefined;
}

describe('serve while Brevo is down or refuses the key at start', () => {
  const sims = useSims({ brevo: { plan: 'unlimited', importDelayMs: 20 }, sns: {}, tmpDir: 'tajo-brevo-down-' });
  let serve: ServeProcess | undefined;
  afterEach(() => {
    serve?.child.kill('SIGKILL');
    serve = undefined;
    sims.brevo.setFaults({ errorRate: 0 });
    sims.brevo.reset();
  });

  it('acknowledges while Brevo answers 5xx to everything, then sets up the attributes and delivers once Brevo recovers', async () => {
    sims.brevo.setFaults({ errorRate: 1 });
    const port = await freePort();
    serve = spawnRealtimeServe(sims, { name: 'down', port, apiKey: sims.brevo.apiKey });
    const s = serve;
    const ready = await upWithBrevo(s, port, 'unavailable');
    expect(ready).toMatchObject({ ok: true, store: 'sqlite' });

    const payloads = realisticMix(40, { recipients: 10, seed: 3 });
    for (const p of payloads) {
      const res = await sims.sns.publish(`http://127.0.0.1:${port}/webhooks/amazon-ses`, sims.sns.notification(TOPIC, p));
      expect(res.status).toBe(200);
    }
    // Time for a delivery round, were one to run before the attributes exist.
    await new Promise((r) => setTimeout(r, 1500));
    const routes = Object.keys(sims.brevo.stats().byRoute);
    expect(routes.length).toBeGreaterThan(0);
    expect(routes.filter((r) => !r.includes('/contacts/attributes'))).toEqual([]);
    expect(s.child.exitCode).toBeNull();
    // One warning for the whole failure streak, however many tries it took.
    expect(s.logs().match(/attribute set-up failed/g)?.length).toBe(1);

    sims.brevo.setFaults({ errorRate: 0 });
    await untilBrevoMatches(sims.brevo, payloads, {
      policy: ALL_EVENTS_BOTH,
      what: 'Brevo to hold every stored event once it is back',
      timeoutMs: 45_000,
      everyMs: 200,
    });
    const names = sims.brevo.state().attributes.map((a) => a.name);
    expect(names).toEqual(expect.arrayContaining(Object.keys(SES_ATTRIBUTES)));
    expect(await readyz(port)).toMatchObject({ ok: true, brevo: 'ready' });
  }, 90_000);

  it('stays up and acknowledges with a key Brevo refuses (401), and says so in /readyz, /admin/status and the log', async () => {
    const port = await freePort();
    serve = spawnRealtimeServe(sims, { name: 'badkey', port, apiKey: 'not-the-key' });
    const s = serve;
    await upWithBrevo(s, port, 'unauthorized');

    const [payload] = realisticMix(1, { recipients: 1, seed: 5 });
    const res = await sims.sns.publish(`http://127.0.0.1:${port}/webhooks/amazon-ses`, sims.sns.notification(TOPIC, payload!));
    expect(res.status).toBe(200);
    const status = (await (await fetch(`http://127.0.0.1:${port}/admin/status`)).json()) as { brevoSetup?: { state: string; error?: string } };
    expect(status.brevoSetup?.state).toBe('unauthorized');
    expect(status.brevoSetup?.error).toMatch(/401/);
    // pino level 50: an error line that names the key.
    expect(s.logs()).toMatch(/"level":50[^\n]*Brevo refuses the API key/);
    expect(s.child.exitCode).toBeNull();
    expect(sims.brevo.state().events).toEqual([]);
  }, 60_000);
});
