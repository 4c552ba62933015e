// Per-command help has no side effects: with a valid tajo.yaml present (store, Brevo and SES
// pointed at places the test watches), `tajo-ses <command> --help` prints the command's help
// and exits 0, and nothing is written, no request made, no server left running.
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, cleanEnv, ensureBuilt, runCli } from './cli-run.js';

let dir = '';
let watcher: Server;
let requests = 0;
let config = '';

beforeAll(async () => {
  ensureBuilt();
  dir = mkdtempSync(join(tmpdir(), 'tajo-help-'));
  watcher = createServer((_req, res) => {
    requests++;
    res.writeHead(500).end();
  });
  await new Promise<void>((r) => watcher.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(watcher.address() as AddressInfo).port}`;
  writeFileSync(
    join(dir, 'tajo.yaml'),
    [
      'connectors:',
      '  amazon-ses:',
      '    region: us-east-1',
      `    endpoint: ${url}`,
      "    sns: { topic_arns: ['arn:aws:sns:us-east-1:123456789012:ses-events'] }",
      'brevo:',
      '  api_key: xkeysib-help-test',
      `  base_url: ${url}/v3`,
      'store:',
      '  url: sqlite:./state/tajo.db',
      'server:',
      '  port: 0',
      '  host: 127.0.0.1',
      '',
    ].join('\n'),
  );
  config = readFileSync(join(dir, 'tajo.yaml'), 'utf8');
});

afterAll(async () => {
  await new Promise<void>((r) => watcher.close(() => r()));
  rmSync(dir, { recursive: true, force: true });
});

const COMMANDS: Array<{ args: string[]; name: string }> = [
  { args: ['serve', '--help'], name: 'serve' },
  { args: ['demo', '--help'], name: 'demo' },
  { args: ['check', '-h'], name: 'check' },
  { args: ['check', '--fix', '--help'], name: 'check' },
  { args: ['backfill', '--help'], name: 'backfill' },
  { args: ['backfill', '--full', '--stream', 'contacts', '--help'], name: 'backfill' },
  { args: ['status', '--help'], name: 'status' },
  { args: ['reconcile', '--help'], name: 'reconcile' },
  { args: ['reconcile', '--fix', '--help'], name: 'reconcile' },
  { args: ['failures', '--help'], name: 'failures' },
  { args: ['failures', 'retry', '--all', '--help'], name: 'failures' },
  { args: ['config', 'validate', '--help'], name: 'config' },
  { args: ['help', 'serve'], name: 'serve' },
  { args: ['init', '--help'], name: 'init' },
  { args: ['init', '--force', '--local', '--help'], name: 'init' },
  { args: ['sim', '--help'], name: 'sim' },
  { args: ['sim', 'brevo', '--help'], name: 'sim brevo' },
  { args: ['sim', 'brevo', '--fail-rate', '1', '-h'], name: 'sim brevo' },
  { args: ['sim', 'ses', '--help'], name: 'sim ses' },
  { args: ['sim', 'sqs', '--visibility', '5', '--help'], name: 'sim sqs' },
  { args: ['sim', 'sns', '--url', 'http://127.0.0.1:9/x', '--count', '5', '--help'], name: 'sim sns' },
  { args: ['help', 'sim', 'sns'], name: 'sim sns' },
];

describe('per-command help', () => {
  for (const c of COMMANDS) {
    it(`tajo-ses ${c.args.join(' ')}: its own help, exit 0, nothing written or called`, async () => {
      const r = await runCli(c.args, { cwd: dir, env: cleanEnv(dir, { BREVO_API_KEY: 'x' }), timeoutMs: 20_000 });
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout.startsWith(`Usage: tajo-ses ${c.name} `) || r.stdout.startsWith(`Usage: tajo-ses ${c.name}\n`)).toBe(true);
      expect(r.stdout).toMatch(/Exit codes:\n\s+0 /);
      expect(r.stdout).toMatch(/Examples:\n\s+(\S+=\S+ )?tajo-ses /);
      expect(readdirSync(dir)).toEqual(['tajo.yaml']);
      expect(readFileSync(join(dir, 'tajo.yaml'), 'utf8')).toBe(config);
      expect(requests).toBe(0);
    });
  }

  it('an unknown command with --help is a usage error', async () => {
    const r = await runCli(['frobnicate', '--help'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown command "frobnicate"/);
  });

  it('a mistyped option names the options the command takes, exit 2, nothing opened', async () => {
    const r = await runCli(['status', '--jsn'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^unknown option --jsn; this command takes --check, --max-lag, --config, --json, --help \(see --help\)/);
    const b = await runCli(['backfill', '--strem', 'x'], { cwd: dir });
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(/unknown option --strem; this command takes --stream, --full, --dry-run/);
    expect(readdirSync(dir)).toEqual(['tajo.yaml']);
  });

  it('a reader that goes away (tajo-ses ... | head) ends the command quietly, no EPIPE trace', async () => {
    // `true` exits without reading: every write of the CLI meets a closed pipe.
    const r = await new Promise<{ stdout: string; stderr: string }>((resolve) => {
      execFile('bash', ['-c', `"${process.execPath}" "${BIN}" demo --help | true; echo "status=\${PIPESTATUS[0]}"`], { cwd: dir }, (_e, stdout, stderr) =>
        resolve({ stdout: String(stdout), stderr: String(stderr) }),
      );
    });
    expect(r.stderr).not.toMatch(/EPIPE|Error/);
    expect(r.stdout.trim()).toBe('status=0');
  });
});
