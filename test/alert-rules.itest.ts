// The Prometheus alert rules shipped in deploy/prometheus, checked and unit-tested by promtool
// (Debian package `prometheus`; .ci/run installs it). Missing promtool fails: never skipped.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createMetrics } from '../src/engine/metrics.js';

const DIR = join(import.meta.dirname, '..', 'deploy', 'prometheus');

function promtool(...args: string[]) {
  const r = spawnSync('promtool', args, { cwd: DIR, encoding: 'utf8', timeout: 60_000 });
  if (r.error) throw new Error(`promtool could not run (${r.error.message}): apt-get install -y prometheus`);
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

/** Names of the metrics a PromQL text refers to (tajo_ses_*). */
const metricNames = (text: string) => new Set([...text.matchAll(/\btajo_ses_[a-z_]+/g)].map((m) => m[0]));

describe('deploy/prometheus alert rules', () => {
  it('promtool check rules accepts them', () => {
    const r = promtool('check', 'rules', 'tajo-ses-alerts.yml');
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/SUCCESS: 5 rules found/);
  });

  it('promtool test rules: every alert fires when it should and not before', () => {
    const r = promtool('test', 'rules', 'tajo-ses-alerts.test.yml');
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/SUCCESS/);
  });

  it('the rules and the Grafana dashboard only use metrics the connector exports', async () => {
    const exported = new Set((await createMetrics().registry.getMetricsAsJSON()).map((m) => m.name));
    const used = new Set([
      ...metricNames(readFileSync(join(DIR, 'tajo-ses-alerts.yml'), 'utf8')),
      ...[...metricNames(readFileSync(join(DIR, '..', 'grafana', 'tajo-ses-dashboard.json'), 'utf8'))].map((n) => n.replace(/_(bucket|sum|count)$/, '')),
    ]);
    expect([...used].filter((n) => !exported.has(n))).toEqual([]);
  });
});
