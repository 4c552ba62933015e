// `tajo-ses init` as users run it (stdin not a terminal: it asks nothing): the file it writes
// holds every key of the configuration at its default, validates, keeps secrets in the
// environment, and an existing file is never overwritten without --force.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { ensureBuilt, runCli } from './cli-run.js';

let tmp = '';
let n = 0;
const fresh = () => {
  const d = join(tmp, `case-${++n}`);
  mkdirSync(d);
  return d;
};

beforeAll(() => {
  ensureBuilt();
  tmp = mkdtempSync(join(tmpdir(), 'tajo-init-itest-'));
}, 180_000);

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** Paths of the leaves of a document: scalars, arrays and empty mappings. */
function leafPaths(v: unknown, prefix = ''): string[] {
  if (v === null || typeof v !== 'object' || Array.isArray(v) || Object.keys(v).length === 0) return [prefix];
  return Object.entries(v).flatMap(([k, x]) => leafPaths(x, prefix ? `${prefix}.${k}` : k));
}

/** Keys with no comment on their line nor on the line of a mapping above them. */
function unexplained(text: string): string[] {
  const stack: Array<{ indent: number; explained: boolean }> = [];
  const out: string[] = [];
  for (const l of text.split('\n')) {
    const m = /^( *)([A-Za-z_-]+):/.exec(l);
    if (!m) continue;
    const indent = m[1]!.length;
    while (stack.length && stack[stack.length - 1]!.indent >= indent) stack.pop();
    const explained = l.includes(' # ') || stack.some((s) => s.explained);
    if (!explained && !/:\s*$/.test(l)) out.push(l.trim());
    stack.push({ indent, explained });
  }
  return out;
}

async function validate(file: string, cwd: string, env: Record<string, string> = { BREVO_API_KEY: 'xkeysib-init-test' }) {
  const r = await runCli(['config', 'validate', '--config', file, '--json'], { cwd, env });
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as { ok: boolean; config: Record<string, unknown>; warnings: string[] };
}

describe('tajo-ses init', () => {
  it('writes ./tajo.yaml with every key at its default, secrets as ${VAR}, and it validates', async () => {
    const dir = fresh();
    const r = await runCli(['init'], { cwd: dir, timeoutMs: 20_000 });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Wrote \.\/tajo\.yaml/);
    const text = readFileSync(join(dir, 'tajo.yaml'), 'utf8');
    expect(text).toMatch(/^ {2}api_key: \$\{BREVO_API_KEY\} +# /m);
    expect(text).toMatch(/^ {2}admin_token: \$\{TAJO_ADMIN_TOKEN:-\} +# /m);
    expect(unexplained(text)).toEqual([]);

    const written = await validate('tajo.yaml', dir);
    expect(written.ok).toBe(true);
    // Every key of the effective configuration is in the file, and nothing else is.
    expect(leafPaths(parseYaml(text)).sort()).toEqual(leafPaths(written.config).sort());
    // The values are the defaults: the same effective configuration as a file with only the required keys.
    writeFileSync(join(dir, 'minimal.yaml'), 'connectors:\n  amazon-ses:\n    region: us-east-1\nbrevo:\n  api_key: ${BREVO_API_KEY}\n');
    expect(written.config).toEqual((await validate('minimal.yaml', dir)).config);
  });

  it('refuses to overwrite an existing file (exit 2, the file untouched) unless --force', async () => {
    const dir = fresh();
    writeFileSync(join(dir, 'tajo.yaml'), '# mine\n');
    const r = await runCli(['init'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/tajo\.yaml already exists; it was left as it is \(pass --force to overwrite it\)/);
    expect(readFileSync(join(dir, 'tajo.yaml'), 'utf8')).toBe('# mine\n');

    const forced = await runCli(['init', '--force', '--region', 'eu-west-1', '--json'], { cwd: dir });
    expect(forced.code).toBe(0);
    expect(JSON.parse(forced.stdout)).toEqual({ ok: true, path: './tajo.yaml', local: false });
    expect(readFileSync(join(dir, 'tajo.yaml'), 'utf8')).toMatch(/^ {4}region: eu-west-1 /m);
  });

  it('--config writes there (making its directory); answers given as flags are checked before anything is written', async () => {
    const dir = fresh();
    const bad = await runCli(['init', '--config', 'etc/tajo/tajo.yaml', '--region', 'moon-1', '--topic', 'arn:aws:sns:eu-west-1:123456789012:ses-events'], {
      cwd: dir,
    });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^connectors\.amazon-ses\.region: found "moon-1"; expected an AWS region/m);
    expect(existsSync(join(dir, 'etc'))).toBe(false);

    const ok = await runCli(['init', '--config', 'etc/tajo/tajo.yaml', '--region', 'eu-west-1', '--topic', 'arn:aws:sns:eu-west-1:123456789012:ses-events'], {
      cwd: dir,
    });
    expect(ok.code).toBe(0);
    const cfg = (await validate('etc/tajo/tajo.yaml', dir)).config as { connectors: { 'amazon-ses': { region: string; sns: { topic_arns: string[] } } } };
    expect(cfg.connectors['amazon-ses'].region).toBe('eu-west-1');
    expect(cfg.connectors['amazon-ses'].sns.topic_arns).toEqual(['arn:aws:sns:eu-west-1:123456789012:ses-events']);
  });

  it('--local: a config for the simulators that validates without any environment', async () => {
    const dir = fresh();
    const r = await runCli(['init', '--local'], { cwd: dir });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/tajo-ses sim brevo --port 4010/);
    const v = await validate('tajo.yaml', dir, {});
    expect(v.warnings.join('\n')).toMatch(/allow_http_cert_urls is true/);
  });
});
