import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger, prettyLine, resolveFormat } from './log.js';

const dir = mkdtempSync(join(tmpdir(), 'tajo-log-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** What a logger of `format` writes for `write`, read back from a file it logs to. */
function written(format: 'pretty' | 'json', write: (log: ReturnType<typeof createLogger>) => void, level = 'debug'): string {
  const path = join(dir, `${format}-${Math.random()}.log`);
  const fd = openSync(path, 'w');
  try {
    write(createLogger(level, { fd, format }));
  } finally {
    closeSync(fd);
  }
  return readFileSync(path, 'utf8');
}

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

describe('log formats', () => {
  it('json: one object per line with an ISO time, the numeric level and the fields; secrets redacted', () => {
    const out = written('json', (log) => log.info({ stream: 'contacts', cfg: { api_key: 'xkeysib-secret' } }, 'scheduled sync done'));
    const lines = out.trim().split('\n');
    expect(lines).toHaveLength(1);
    const o = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(o).toMatchObject({ level: 30, msg: 'scheduled sync done', stream: 'contacts', cfg: { api_key: '****' } });
    expect(o.time).toMatch(ISO);
    expect(out).not.toContain('xkeysib-secret');
  });

  it('pretty: `time LEVEL message key=value`, strings with spaces quoted, objects as JSON; secrets redacted', () => {
    const out = written('pretty', (log) => {
      log.warn({ code: 'server_error', retry: 3, note: 'next try in 2 s', cfg: { admin_token: 'tok-secret' } }, 'Brevo is failing');
      log.debug('quiet');
    });
    const lines = out.trim().split('\n');
    expect(lines).toHaveLength(2);
    const [time, level, ...rest] = lines[0]!.split(/ +/);
    expect(time).toMatch(ISO);
    expect(level).toBe('WARN');
    expect(rest.join(' ')).toBe('Brevo is failing code=server_error retry=3 note="next try in 2 s" cfg={"admin_token":"****"}');
    expect(lines[1]).toMatch(/ DEBUG quiet$/);
    expect(out).not.toContain('tok-secret');
  });

  it('the level still filters in both formats', () => {
    expect(written('pretty', (log) => log.debug('hidden'), 'info')).toBe('');
    expect(written('json', (log) => log.debug('hidden'), 'info')).toBe('');
  });

  it('prettyLine passes a line that is not JSON through; auto is json when the output is not a terminal', () => {
    expect(prettyLine('not json')).toBe('not json\n');
    const fd = openSync(join(dir, 'not-a-tty'), 'w');
    try {
      expect(resolveFormat('auto', fd)).toBe('json');
      expect(resolveFormat('pretty', fd)).toBe('pretty');
      expect(resolveFormat('json', fd)).toBe('json');
    } finally {
      closeSync(fd);
    }
  });
});
