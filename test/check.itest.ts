// Issue: `tajo-ses check` verifies the SES and Brevo set-up and prints a fix for each
// failure. The command runs as a child process (bin/tajo-ses.js) against the SES simulator
// (AWS keys from the environment, as the SDK's default chain reads them), the Brevo
// simulator, and the SNS and EventBridge simulators for how events reach the connector (the
// cases of those checks: test/check-delivery.itest.ts).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { join } from 'node:path';
import type { CheckResult } from '../src/engine/check.js';
import { childEnv, ensureBuilt, runCli, simConfig, writeConfig, type CliRun } from './backfill-helpers.js';
import { TOPIC, useSims } from './helpers.js';
import { startEventBridgeSim, type EventBridgeSim } from '../src/sim/eventbridge/index.js';

const WRONG_KEY = 'xkeysib-wrong-SECRET-7a7a7a7a';
const SES_ATTRIBUTES = 15;

describe('tajo-ses check', () => {
  const sims = useSims({ brevo: { plan: 'general' }, ses: { rps: 1 }, sns: {}, tmpDir: 'tajo-check-' });
  let eb: EventBridgeSim;
  afterAll(async () => {
    await eb?.close();
  });
  let env: Record<string, string>;
  let good: string;
  let wrongKey: string;
  /** stderr of the all-good run, for the BUG test below. */
  let allGoodStderr: string | undefined;

  const publishing = (topic: string, enabled = true) => ({
    configurationSets: [
      {
        name: 'marketing',
        eventDestinations: [{ name: 'to-sns', enabled, matchingEventTypes: ['SEND', 'DELIVERY', 'BOUNCE', 'COMPLAINT'], snsTopicArn: topic }],
      },
    ],
  });

  /** How events reach the connector: an SNS webhook subscription at SNS's defaults, an EventBridge rule to its API destination. */
  const delivery = () => ({
    sns: { topic_arns: [TOPIC], endpoint: sims.sns.url },
    eventbridge: { secret: 'check-eb-secret', endpoint: eb.endpoint },
  });

  beforeAll(async () => {
    ensureBuilt();
    sims.ses.seed({ identities: [{ name: 'example.com' }], ...publishing(TOPIC) });
    sims.sns.subscribe(TOPIC, { protocol: 'http', endpoint: 'https://hooks.example.com/webhooks/amazon-ses' });
    eb = await startEventBridgeSim();
    eb.seed({
      rules: [
        {
          name: 'ses-to-tajo',
          eventPattern: { source: ['aws.ses'] },
          targets: [{ id: 'tajo', arn: eb.apiDestinationArn('tajo'), deadLetterArn: 'arn:aws:sqs:us-east-1:123456789012:eb-dlq' }],
        },
      ],
      apiDestinations: [{ name: 'tajo', invocationEndpoint: 'https://hooks.example.com/webhooks/amazon-ses/eventbridge' }],
    });
    env = childEnv(sims.dir);
    good = writeConfig(
      join(sims.dir, 'tajo.yaml'),
      simConfig({
        sesEndpoint: sims.ses.endpoint,
        brevo: { url: sims.brevo.url, apiKey: sims.brevo.apiKey },
        db: join(sims.dir, 'store', 'amazon-ses.db'),
        ses: delivery(),
      }),
    );
    wrongKey = writeConfig(
      join(sims.dir, 'wrong-key.yaml'),
      simConfig({
        sesEndpoint: sims.ses.endpoint,
        brevo: { url: sims.brevo.url, apiKey: WRONG_KEY },
        db: join(sims.dir, 'store', 'amazon-ses.db'),
        ses: delivery(),
      }),
    );
  });

  const check = (...args: string[]) => runCli(['check', ...args], { cwd: sims.dir, env });

  /** The `fix:` line printed right under the failed check's line. */
  function fixFor(r: CliRun, name: string): string | undefined {
    const lines = r.stdout.split('\n');
    const i = lines.findIndex((l) => l.startsWith(`✗ ${name}:`));
    if (i < 0) return undefined;
    const next = lines[i + 1] ?? '';
    return /^\s+fix: /.test(next) ? next.trim() : undefined;
  }

  it('missing Brevo attributes: exits 1 with the fix; --fix creates them and exits 0', async () => {
    const before = await check('--config', good);
    expect(before.code, before.stdout + before.stderr).toBe(1);
    expect(before.stdout).toMatch(/^✗ brevo\.attributes: 15 SES_\* attribute\(s\) missing$/m);
    expect(fixFor(before, 'brevo.attributes')).toMatch(/^fix: run tajo-ses check --fix/);
    expect(before.stdout).toContain('1 check(s) failed.');

    const fixed = await check('--fix', '--config', good);
    expect(fixed.code, fixed.stdout + fixed.stderr).toBe(0);
    expect(fixed.stdout).toMatch(/^✓ brevo\.attributes: created SES_/m);
    expect(fixed.stdout).toContain('All checks passed.');
    const attrs = sims.brevo.state().attributes.filter((a) => a.name.startsWith('SES_'));
    expect(attrs).toHaveLength(SES_ATTRIBUTES);
    expect(attrs.every((a) => a.category === 'normal')).toBe(true);
  }, 60_000);

  it('all good: exits 0, every check passes (the folder not existing yet is only a warning)', async () => {
    const r = await check('--config', good);
    allGoodStderr = r.stderr;
    expect(r.code, r.stdout + r.stderr).toBe(0);
    for (const name of [
      'ses.credentials',
      'ses.sending',
      'ses.event_publishing',
      'ses.contact_lists',
      'ses.suppressions',
      'brevo.api_key',
      'brevo.attributes',
      'store',
    ]) {
      expect(r.stdout).toMatch(new RegExp(`^✓ ${name.replace('.', '\\.')}: `, 'm'));
    }
    expect(r.stdout).toMatch(/^✓ ses\.event_publishing: marketing\/to-sns publish BOUNCE, COMPLAINT, DELIVERY, SEND to an allowed topic$/m);
    expect(r.stdout).toMatch(/^! brevo\.lists: folder "Amazon SES" does not exist yet$/m);
    // SNS's default delivery policy on the webhook's subscription: a warning, with the fix under it.
    const lines = r.stdout.split('\n');
    const policy = lines.findIndex((l) => l.startsWith('! sns.delivery_policy: https://hooks.example.com/webhooks/amazon-ses on '));
    expect(lines[policy], r.stdout).toContain("SNS's default delivery policy (3 retries over about 60 s)");
    expect(lines[policy + 1]).toMatch(/^\s+fix: aws sns set-subscription-attributes --subscription-arn \S+ --attribute-name DeliveryPolicy /);
    expect(r.stdout).toMatch(/^✓ eventbridge\.rule: rule ses-to-tajo sends source aws\.ses events to the API destination tajo /m);
    expect(r.stdout).not.toMatch(/^✗/m);
    expect(r.stdout).toContain('All checks passed.');
    expect(r.stdout + r.stderr).not.toContain(sims.brevo.apiKey);
  }, 60_000);

  it('--json prints one JSON object per check', async () => {
    const r = await check('--json', '--config', good);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    const results = lines.map((l) => JSON.parse(l) as CheckResult);
    expect(results.length).toBeGreaterThanOrEqual(9);
    for (const c of results) {
      expect(Object.keys(c).sort()).toEqual(expect.arrayContaining(['detail', 'name', 'ok']));
      expect(typeof c.name).toBe('string');
      expect(typeof c.ok).toBe('boolean');
      expect(typeof c.detail).toBe('string');
      if (!c.ok || c.warning) expect(c.fix, c.name).toBeTruthy();
    }
    expect(new Set(results.map((c) => c.name)).size).toBe(results.length);
    expect(results.filter((c) => !c.ok && !c.warning)).toEqual([]);
    expect(results.map((c) => c.name)).toEqual(
      expect.arrayContaining(['ses.credentials', 'ses.event_publishing', 'brevo.api_key', 'brevo.attributes', 'brevo.lists', 'store']),
    );
  }, 60_000);

  it('the allowed topic missing from the configuration set: exits 1 and prints a fix', async () => {
    const other = 'arn:aws:sns:us-east-1:123456789012:someone-elses-topic';
    sims.ses.seed(publishing(other));
    try {
      const r = await check('--config', good);
      expect(r.code, r.stdout + r.stderr).toBe(1);
      expect(r.stdout).toMatch(
        new RegExp(`^✗ ses\\.event_publishing: no enabled configuration set event destination publishes to ${TOPIC} \\(found topics: ${other}\\)$`, 'm'),
      );
      expect(fixFor(r, 'ses.event_publishing')).toMatch(/^fix: .*SNS event destination.*topic_arns/);
      expect(r.stdout).toContain('1 check(s) failed.');

      // A destination to the right topic that is disabled does not count either.
      sims.ses.seed(publishing(TOPIC, false));
      const disabled = await check('--json', '--config', good);
      expect(disabled.code).toBe(1);
      const ep = disabled.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as CheckResult)
        .find((c) => c.name === 'ses.event_publishing');
      expect(ep).toMatchObject({ ok: false, fix: expect.stringContaining('topic_arns') });
    } finally {
      sims.ses.seed(publishing(TOPIC));
    }
  }, 60_000);

  it('a wrong Brevo key: exits 1 with a fix, and the key is never printed', async () => {
    const r = await check('--config', wrongKey);
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stdout).toMatch(/^✗ brevo\.api_key: .*401/m);
    expect(fixFor(r, 'brevo.api_key')).toMatch(/^fix: set brevo\.api_key \(BREVO_API_KEY\) to a valid Brevo v3 API key/);
    // SES is fine, so only the Brevo check fails.
    expect(r.stdout).toMatch(/^✓ ses\.credentials: /m);
    expect(r.stdout).toContain('1 check(s) failed.');
    expect(r.stdout + r.stderr).not.toContain(WRONG_KEY);
    const j = await check('--json', '--config', wrongKey);
    expect(j.code).toBe(1);
    expect(j.stdout + j.stderr).not.toContain(WRONG_KEY);
  }, 60_000);

  it('the AWS SDK Node-version notice is not printed by the CLI (the README says it once)', async () => {
    if (Number(process.versions.node.split('.')[0]) >= 22) return;
    const stderr = allGoodStderr ?? (await check('--config', good)).stderr;
    expect(stderr).not.toContain('NodeVersionSupportWarning');
  }, 60_000);

  it('an empty Brevo key gives one "brevo.api_key" result (--json stays one object per check)', async () => {
    const noKey = writeConfig(
      join(sims.dir, 'no-key.yaml'),
      simConfig({ sesEndpoint: sims.ses.endpoint, brevo: { url: sims.brevo.url, apiKey: '' }, db: join(sims.dir, 'store', 'amazon-ses.db'), ses: delivery() }),
    );
    const r = await check('--json', '--config', noKey);
    expect(r.code, r.stdout + r.stderr).toBe(1);
    const results = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as CheckResult);
    const apiKey = results.filter((c) => c.name === 'brevo.api_key');
    expect(apiKey.length).toBeGreaterThan(0);
    expect(apiKey.every((c) => !c.ok && c.fix)).toBe(true);
    expect(apiKey.map((c) => c.detail)).toHaveLength(1);
  }, 60_000);
});
