// The `server.*` limits (issue 11, finding 1): defaults, the duration format, and what is refused.
import { describe, expect, it } from 'vitest';
import { parseConfig, type ConfigError } from './load.js';

function server(keys: Record<string, unknown>) {
  return parseConfig({ connectors: { 'amazon-ses': { region: 'us-east-1' } }, brevo: { api_key: 'k' }, server: keys }, { env: {} }).server;
}

function problems(keys: Record<string, unknown>): string[] {
  try {
    server(keys);
  } catch (err) {
    return (err as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

describe('server limits', () => {
  it('default to 20s request, 10s headers, 5s keep-alive and 1024 connections', () => {
    expect(server({})).toMatchObject({ request_timeout: 20_000, headers_timeout: 10_000, keep_alive_timeout: 5_000, max_connections: 1024 });
  });

  it('read durations in the config format and numbers from ${VAR} text', () => {
    expect(server({ request_timeout: '1m', headers_timeout: '1500ms', keep_alive_timeout: 65, max_connections: '64' })).toMatchObject({
      request_timeout: 60_000,
      headers_timeout: 1_500,
      keep_alive_timeout: 65_000,
      max_connections: 64,
    });
  });

  it.each(['request_timeout', 'headers_timeout', 'keep_alive_timeout'])('refuse %s: 0 (no timeout at all)', (key) => {
    expect(problems({ [key]: '0s' })).toEqual([`server.${key}: found "0s"; expected a duration above 0, such as 500ms or 20s`]);
  });

  it('refuse a header timeout longer than the request timeout (Node would throw at start)', () => {
    expect(problems({ request_timeout: '5s' })).toEqual([
      'server.headers_timeout: found nothing; must not be longer than server.request_timeout (headers_timeout defaults to 10s)',
    ]);
    expect(server({ request_timeout: '5s', headers_timeout: '5s' }).headers_timeout).toBe(5_000);
  });

  it('refuse a connection cap below 1', () => {
    expect(problems({ max_connections: 0 })[0]).toMatch(/^server\.max_connections: found 0; /);
  });
});
