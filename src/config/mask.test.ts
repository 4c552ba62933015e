// Secret masking (issue 11, finding 7): every form a secret can take in the configuration
// stays out of `config validate`, problem lines and logs.
import { describe, expect, it } from 'vitest';
import { maskSecrets, maskUrlPassword, parseConfig, type ConfigError } from './load.js';

function config(extra: Record<string, unknown>) {
  return parseConfig({ connectors: { 'amazon-ses': { region: 'us-east-1' } }, brevo: { api_key: 'xkeysib-BREVO-SECRET' }, ...extra }, { env: {} });
}

describe('maskUrlPassword', () => {
  it.each([
    // The password contains '@': user-info ends at the last '@' before the host.
    ['postgres://tajo:p@ss@host', 'postgres://tajo:****@host'],
    ['postgres://tajo:p@ss@db.internal:5432/tajo', 'postgres://tajo:****@db.internal:5432/tajo'],
    ['postgresql://tajo:a:b@c@db:5432/tajo?schema=x', 'postgresql://tajo:****@db:5432/tajo?schema=x'],
    // A user name with '@' (Azure style) and a password with '/', '?' or '#'.
    ['postgres://tajo@server:Pw0rd@db:5432/tajo', 'postgres://tajo@server:****@db:5432/tajo'],
    ['postgres://tajo:pa/ss?w#rd@db:5432/tajo', 'postgres://tajo:****@db:5432/tajo'],
    ['postgres://:only-password@db/tajo', 'postgres://:****@db/tajo'],
  ])('masks the user-info password of %s', (input, expected) => {
    expect(maskUrlPassword(input)).toBe(expected);
  });

  it.each([
    ['postgres://tajo@db:5432/tajo?sslmode=verify-full&sslpassword=KeyPass9', 'postgres://tajo@db:5432/tajo?sslmode=verify-full&sslpassword=****'],
    ['postgres://tajo@db/tajo?password=Hunter2&schema=a', 'postgres://tajo@db/tajo?password=****&schema=a'],
    ['postgres://db/tajo?user=tajo&PASSWORD=Hunter2', 'postgres://db/tajo?user=tajo&PASSWORD=****'],
    ['https://api.example/v3?api_key=K1&x=1', 'https://api.example/v3?api_key=****&x=1'],
    ['https://api.example/v3?token=T1', 'https://api.example/v3?token=****'],
    ['https://api.example/v3?access_token=T1&apikey=K2', 'https://api.example/v3?access_token=****&apikey=****'],
    // Keyword form (what an operator may paste into store.url by mistake).
    ['host=db user=tajo password=Hunter2 sslpassword=KeyPass9', 'host=db user=tajo password=**** sslpassword=****'],
  ])('masks secret parameters in %s', (input, expected) => {
    expect(maskUrlPassword(input)).toBe(expected);
  });

  it.each([
    'postgres://tajo@db:5432/tajo',
    'postgresql://db:5432/tajo?schema=tajo&sslmode=require',
    'sqlite:./.tajo/amazon-ses.db',
    'https://api.brevo.com/v3',
    'postgres://tajo@db/tajo?sslkey=/etc/tajo/client.key',
  ])('leaves %s alone', (input) => {
    expect(maskUrlPassword(input)).toBe(input);
  });
});

describe('maskSecrets', () => {
  it('hides a store URL password that contains @ and its sslpassword (what `config validate` prints)', () => {
    const cfg = config({ store: { url: 'postgres://tajo:Pw@Secret1@db.internal:5432/tajo?sslmode=verify-full&sslpassword=SslKeyPass9' } });
    const text = JSON.stringify(maskSecrets(cfg));
    expect(text).not.toContain('Secret1');
    expect(text).not.toContain('SslKeyPass9');
    expect(text).not.toContain('BREVO-SECRET');
    expect(maskSecrets(cfg).store.url).toBe('postgres://tajo:****@db.internal:5432/tajo?sslmode=verify-full&sslpassword=****');
  });

  it('hides the admin token and secrets under key names other sections use (eventbridge, sqs, credentials)', () => {
    const masked = maskSecrets({
      server: { admin_token: 'adm-SECRET' },
      eventbridge: { header_name: 'x-tajo-secret', secret: 'eb-SECRET' },
      sqs: { queue_url: 'https://sqs.us-east-1.amazonaws.com/1/q', secret_access_key: 'sqs-SECRET', session_token: 'sess-SECRET' },
      other: { password: 'pw-SECRET', client_secret: 'cs-SECRET', auth_token: 'at-SECRET' },
    });
    expect(JSON.stringify(masked)).not.toContain('SECRET');
    expect(masked.eventbridge.header_name).toBe('x-tajo-secret');
    expect(masked.sqs.queue_url).toBe('https://sqs.us-east-1.amazonaws.com/1/q');
  });
});

describe('problem lines', () => {
  it('do not print the password or sslpassword of an invalid store URL', () => {
    for (const url of ['postgress://tajo:Pw@Secret1@db:5432/tajo', 'mysql://tajo@db/tajo?sslpassword=SslKeyPass9', 'host=db password=Secret1']) {
      let problems: string[] = [];
      try {
        config({ store: { url } });
      } catch (err) {
        problems = (err as ConfigError).problems;
      }
      const line = problems.find((p) => p.startsWith('store.url:'));
      expect(line, url).toBeDefined();
      expect(line).not.toContain('Secret1');
      expect(line).not.toContain('SslKeyPass9');
    }
  });
});
