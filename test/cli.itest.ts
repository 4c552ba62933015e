// The `tajo-ses` command as users run it: a child process over bin/tajo-ses.js (which loads
// dist/). `npm test` builds first; when run alone, beforeAll rebuilds dist if a source file
// is newer than dist/cli/main.js.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, runCli, type CliRun } from './cli-run.js';

const API_KEY = 'xkeysib-cli-test-SECRET-0f0f0f';
const ADMIN_TOKEN = 'admin-cli-test-SECRET-1e1e1e';

let tmp = '';

function run(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  // A clean environment: no inherited Brevo key, token or config path.
  return runCli(args, { cwd: tmp, env: { PATH: process.env.PATH ?? '', HOME: tmp, NO_COLOR: '1', ...env }, timeoutMs: 60_000 });
}

function writeConfig(name: string, lines: string[]): string {
  const p = join(tmp, name);
  writeFileSync(p, lines.join('\n') + '\n');
  return p;
}

let valid = '';
let invalid = '';

beforeAll(() => {
  ensureBuilt();
  tmp = mkdtempSync(join(tmpdir(), 'tajo-cli-itest-'));
  valid = writeConfig('tajo.valid.yaml', [
    'connectors:',
    '  amazon-ses:',
    '    region: us-east-1',
    '    sns:',
    "      topic_arns: ['arn:aws:sns:us-east-1:123456789012:ses-events']",
    'brevo:',
    '  api_key: ${BREVO_API_KEY}',
    'store:',
    `  url: sqlite:${join(tmp, 'store', 'amazon-ses.db')}`,
    'server:',
    '  admin_token: ${TAJO_ADMIN_TOKEN:-}',
  ]);
  invalid = writeConfig('tajo.invalid.yaml', [
    'connectors:',
    '  amazon-ses:',
    '    region: moon-1',
    '    events:',
    '      Open: sometimes',
    '    sns:',
    '      max_message_age: soon',
    'brevo:',
    `  api_key: ${API_KEY}`,
    'server:',
    '  port: 99999',
    `  admin_token: ${ADMIN_TOKEN}`,
  ]);
}, 180_000);

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const ENV = { BREVO_API_KEY: API_KEY, TAJO_ADMIN_TOKEN: ADMIN_TOKEN };

describe('tajo-ses config validate', () => {
  it('valid file: exit 0, effective configuration with secrets masked', async () => {
    const r = await run(['config', 'validate', '--config', valid], ENV);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/valid/);
    expect(r.stdout).toMatch(/region: us-east-1/);
    expect(r.stdout).toMatch(/api_key: "?\*\*\*\*"?/);
    expect(r.stdout).toMatch(/admin_token: "?\*\*\*\*"?/);
    // Defaults are printed too (the effective configuration).
    expect(r.stdout).toMatch(/max_message_age: 3600000/);
    expect(r.stdout).not.toContain(API_KEY);
    expect(r.stdout).not.toContain(ADMIN_TOKEN);
  });

  it('valid file with --json: one JSON line, ok, secrets masked', async () => {
    const r = await run(['config', 'validate', '--config', valid, '--json'], ENV);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const out = JSON.parse(lines[0]!) as { ok: boolean; config: { brevo: { api_key: string }; server: { admin_token: string } }; warnings: string[] };
    expect(out.ok).toBe(true);
    expect(out.config.brevo.api_key).toBe('****');
    expect(out.config.server.admin_token).toBe('****');
    expect(out.warnings).toEqual([]);
    expect(r.stdout + r.stderr).not.toContain(API_KEY);
    expect(r.stdout + r.stderr).not.toContain(ADMIN_TOKEN);
  });

  it('uses TAJO_CONFIG when there is no --config and no ./tajo.yaml', async () => {
    const viaEnv = await run(['config', 'validate', '--json'], { ...ENV, TAJO_CONFIG: valid });
    expect(viaEnv.code).toBe(0);
    expect((JSON.parse(viaEnv.stdout) as { ok: boolean }).ok).toBe(true);
  });

  it('a missing variable: exit 2, naming the variable and the key', async () => {
    const r = await run(['config', 'validate', '--config', valid], {});
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/brevo\.api_key.*BREVO_API_KEY/);
  });

  it('invalid file: exit 2, one line per problem on stderr, secrets not printed', async () => {
    const r = await run(['config', 'validate', '--config', invalid], ENV);
    expect(r.code).toBe(2);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(4);
    expect(lines.some((l) => l.startsWith('connectors.amazon-ses.region:') && l.includes('"moon-1"'))).toBe(true);
    expect(lines.some((l) => l.startsWith('connectors.amazon-ses.events.Open:') && l.includes('"sometimes"') && l.includes('"both"'))).toBe(true);
    expect(lines.some((l) => l.startsWith('connectors.amazon-ses.sns.max_message_age:') && l.includes('"soon"'))).toBe(true);
    expect(lines.some((l) => l.startsWith('server.port:') && l.includes('99999'))).toBe(true);
    expect(r.stdout + r.stderr).not.toContain(API_KEY);
    expect(r.stdout + r.stderr).not.toContain(ADMIN_TOKEN);
  });

  it('invalid file with --json: exit 2, the problems as JSON, secrets not printed', async () => {
    const r = await run(['config', 'validate', '--config', invalid, '--json'], ENV);
    expect(r.code).toBe(2);
    const out = JSON.parse(r.stdout.trim()) as { ok: boolean; error: string; problems: string[] };
    expect(out).toMatchObject({ ok: false, error: 'invalid_config' });
    expect(out.problems).toHaveLength(4);
    expect(r.stdout + r.stderr).not.toContain(API_KEY);
  });

  it('missing file: exit 2 and what to do', async () => {
    const r = await run(['config', 'validate', '--config', join(tmp, 'nope.yaml')], ENV);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/nope\.yaml does not exist/);
    expect(r.stderr).toMatch(/--config/);
  });

  it('a YAML syntax error: exit 2 with line and column', async () => {
    const bad = writeConfig('tajo.broken.yaml', ['connectors:', '  amazon-ses:', '    region: [us-east-1', 'brevo:', '  api_key: k']);
    const r = await run(['config', 'validate', '--config', bad], ENV);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/line \d+, column \d+/);
  });
});

describe('tajo-ses demo', () => {
  it('runs on the embedded default: exit 0, and prints what Brevo received against what was published', async () => {
    const r = await run(['demo', '--events', '120', '--contacts', '25']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Published \d+ signed SNS envelopes \(\d+ replayed\) carrying \d+ SES records\./);
    expect(r.stdout).toMatch(/events\s+(\d+) \(expected \1, duplicates 0, missing 0\)/);
    // Addresses blocklisted by the backfilled SES state are counted apart from those the events blocklist.
    const m = /blocklisted\s+(\d+) \(expected (\d+) from the events(?:, plus (\d+) from the SES state backfilled above)?\)/.exec(r.stdout);
    expect(m, r.stdout).not.toBeNull();
    expect(Number(m![1])).toBe(Number(m![2]) + Number(m![3] ?? 0));
    expect(r.stdout).toContain('Result: Brevo matches what SES published.');
  });

  it('--json: progress lines, then one result document with the comparison', async () => {
    const r = await run(['demo', '--events', '60', '--contacts', '10', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines.slice(0, -1).every((l) => 'progress' in (JSON.parse(l) as object))).toBe(true);
    const doc = JSON.parse(lines[lines.length - 1]!) as {
      ok: boolean;
      comparison: { events: { missing: number; duplicates: number }; blocklist: { expected: number; received: number; alsoAllowed: number } };
    };
    expect(doc.ok).toBe(true);
    expect(doc.comparison.events).toMatchObject({ missing: 0, duplicates: 0 });
    expect(doc.comparison.blocklist.received).toBe(doc.comparison.blocklist.expected + doc.comparison.blocklist.alsoAllowed);
  });
});

describe('tajo-ses demo --intake', () => {
  it.each(['sqs', 'eventbridge'])('--intake %s: exit 0, every event once in Brevo, as with the SNS webhook', async (intake) => {
    const r = await run(['demo', '--events', '60', '--contacts', '10', '--intake', intake, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    const doc = JSON.parse(lines[lines.length - 1]!) as { ok: boolean; comparison: { events: { expected: number; missing: number; duplicates: number } } };
    expect(doc.ok).toBe(true);
    expect(doc.comparison.events).toMatchObject({ missing: 0, duplicates: 0 });
    expect(doc.comparison.events.expected).toBeGreaterThan(0);
  });

  it('an unknown intake is a usage error', async () => {
    const r = await run(['demo', '--intake', 'kafka']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--intake: found "kafka"; allowed: sns, sqs, eventbridge/);
    expect(r.stdout).toBe('');
  });
});

describe('tajo-ses usage', () => {
  it('--help: exit 0 and the commands', async () => {
    const r = await run(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Usage: tajo-ses/);
    for (const cmd of ['demo', 'serve', 'status', 'failures', 'config validate']) expect(r.stdout).toContain(cmd);
  });

  it('an unknown command: exit 2 with a hint', async () => {
    const r = await run(['frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown command "frobnicate"/);
    expect(r.stderr).toMatch(/--help/);
  });

  it('an unknown flag: exit 2', async () => {
    const r = await run(['status', '--bogus', '--config', valid]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/bogus/);
  });

  it('config without a subcommand: exit 2', async () => {
    const r = await run(['config', '--config', valid], ENV);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/config validate/);
  });
});

describe('tajo-ses status and failures on a fresh sqlite store', () => {
  it('status --json: exit 0, queues and dead letters', async () => {
    const r = await run(['status', '--json', '--config', valid], ENV);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const s = JSON.parse(lines[0]!) as { store: string; queues: unknown[]; deadLetters: number; streams: unknown[]; rateLimit: unknown[]; lag: unknown[] };
    expect(s.store).toMatch(/sqlite/);
    expect(s.queues).toEqual([]);
    expect(s.deadLetters).toBe(0);
    expect(Array.isArray(s.streams)).toBe(true);
    expect(Array.isArray(s.rateLimit)).toBe(true);
    expect(existsSync(join(tmp, 'store', 'amazon-ses.db'))).toBe(true);
  });

  it('status (human): exit 0', async () => {
    const r = await run(['status', '--config', valid], ENV);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Dead letters: 0/);
  });

  it("failures list: exit 0, 'No dead letters.'", async () => {
    const r = await run(['failures', 'list', '--config', valid], ENV);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe('No dead letters.');
  });

  it('failures list --json: exit 0, no lines', async () => {
    const r = await run(['failures', 'list', '--json', '--config', valid], ENV);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe('');
  });

  it('failures show without an id: exit 2 with what to give', async () => {
    const r = await run(['failures', 'show', '--config', valid], ENV);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/give the id of a dead letter/);
  });

  it('failures show with an unknown id: exit 1 (not found; 2 is for usage errors)', async () => {
    const r = await run(['failures', 'show', '424242', '--config', valid], ENV);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no operation with id 424242/);
  });

  it('failures with an unknown subcommand: exit 2', async () => {
    const r = await run(['failures', 'explode', '--config', valid], ENV);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown subcommand/);
  });

  // BUG (src/config/load.ts parseConfig + src/cli/main.ts withStore): status and failures load
  // the file with requireBrevoKey: false because they never call Brevo, but with the file of
  // CONTRACT section 1 (`api_key: ${BREVO_API_KEY}`, no default) an unset BREVO_API_KEY is
  // still a "missing variable" error, so an operator cannot look at the queues without the key.
  it('status and failures list work without BREVO_API_KEY in the environment (they never call Brevo)', async () => {
    const st = await run(['status', '--json', '--config', valid]);
    expect(st.stderr).toBe('');
    expect(st.code).toBe(0);
    const fl = await run(['failures', 'list', '--config', valid]);
    expect(fl.code).toBe(0);
    expect(fl.stdout.trim()).toBe('No dead letters.');
  });
});
