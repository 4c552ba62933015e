// A SQLite store belongs to one process: a second `serve` on the same file exits 1 at once
// with a message naming the first, instead of two processes sharing the file.
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, spawnServe, until, useSims, writeServeConfig, type ServeProcess } from './helpers.js';
import { ensureBuilt } from './cli-run.js';

describe('serve on a SQLite store', () => {
  const sims = useSims({ brevo: { plan: 'unlimited' }, tmpDir: 'tajo-sqlite-single-' });
  const serves: ServeProcess[] = [];
  afterAll(async () => {
    for (const s of serves) if (s.child.exitCode === null) s.child.kill('SIGTERM');
    await Promise.all(serves.map((s) => s.exited()));
  });

  it('a second serve on the same file exits 1 naming the first; after the first stops, it starts', async () => {
    ensureBuilt();
    const storeUrl = `sqlite:${join(sims.dir, 'shared.db')}`;
    const config = async (name: string) => {
      const port = await freePort();
      return { port, path: writeServeConfig({ dir: sims.dir, name, port, brevo: { url: sims.brevo.url, apiKey: sims.brevo.apiKey }, storeUrl }) };
    };
    const a = await config('a');
    const first = spawnServe(a.path);
    serves.push(first);
    await first.ready(a.port);
    const b = await config('b');
    const second = spawnServe(b.path);
    serves.push(second);
    await until(() => second.child.exitCode !== null, 'the second serve exits', 30_000, 100);
    expect(second.child.exitCode).toBe(1);
    expect(second.logs()).toContain(`another 'tajo-ses serve' (pid ${first.child.pid} on`);
    expect(second.logs()).toContain('a SQLite store belongs to one process');
    first.child.kill('SIGTERM');
    expect(await first.exited()).toBe(0);
    const third = spawnServe(b.path);
    serves.push(third);
    await third.ready(b.port);
  });
});
