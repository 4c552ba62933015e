import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, configWarnings, loadConfig, maskSecrets, parseConfig, type LoadOptions } from './load.js';
import { DEFAULT_SIGNING_CERT_HOST, type TajoConfig } from './schema.js';
import { formatDuration, parseDuration } from './duration.js';

const API_KEY = 'xkeysib-0123456789abcdef-SECRETKEY';
const ADMIN_TOKEN = 'adm-tok-SECRET-987';

/** A minimal valid document; `extra` is deep-merged over it. */
function doc(extra: Record<string, unknown> = {}): Record<string, unknown> {
  const base: Record<string, unknown> = {
    connectors: { 'amazon-ses': { region: 'us-east-1' } },
    brevo: { api_key: API_KEY },
  };
  return merge(base, extra);
}

function merge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const cur = out[k];
    if (v && typeof v === 'object' && !Array.isArray(v) && cur && typeof cur === 'object' && !Array.isArray(cur)) {
      out[k] = merge(cur as Record<string, unknown>, v as Record<string, unknown>);
    } else out[k] = v;
  }
  return out;
}

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    const ce = err as ConfigError;
    expect(ce.code).toBe('invalid_config');
    expect(ce.retryable).toBe(false);
    // The message carries the same lines, one per problem.
    for (const p of ce.problems) expect(ce.message).toContain(p);
    return ce.problems;
  }
  throw new Error('expected a ConfigError, but the configuration was accepted');
}

function parse(d: Record<string, unknown>, opts: LoadOptions = { env: {} }): TajoConfig {
  return parseConfig(d, opts);
}

function ses(cfg: TajoConfig) {
  return cfg.connectors['amazon-ses'];
}

const tmp = mkdtempSync(join(tmpdir(), 'tajo-load-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let fileN = 0;
function file(text: string): string {
  const p = join(tmp, `tajo-${++fileN}.yaml`);
  writeFileSync(p, text);
  return p;
}

describe('interpolation of ${VAR} and ${VAR:-default}', () => {
  it('replaces variables from the env passed in the options, not from process.env', () => {
    const before = process.env.TAJO_TEST_REGION;
    process.env.TAJO_TEST_REGION = 'ap-south-1';
    try {
      const cfg = parse(doc({ connectors: { 'amazon-ses': { region: '${TAJO_TEST_REGION}' } }, brevo: { api_key: '${BREVO_API_KEY}' } }), {
        env: { TAJO_TEST_REGION: 'eu-west-3', BREVO_API_KEY: API_KEY },
      });
      expect(ses(cfg).region).toBe('eu-west-3');
      expect(cfg.brevo.api_key).toBe(API_KEY);
    } finally {
      if (before === undefined) delete process.env.TAJO_TEST_REGION;
      else process.env.TAJO_TEST_REGION = before;
    }
  });

  it('uses the default when the variable is unset or empty, and the value when set', () => {
    const d = doc({ server: { host: '${HOST:-127.0.0.1}' }, connectors: { 'amazon-ses': { credentials: { profile: '${AWS_PROFILE:-}' } } } });
    expect(parse(d, { env: {} }).server.host).toBe('127.0.0.1');
    expect(parse(d, { env: { HOST: '' } }).server.host).toBe('127.0.0.1');
    expect(parse(d, { env: { HOST: '10.0.0.5' } }).server.host).toBe('10.0.0.5');
    expect(ses(parse(d, { env: {} })).credentials.profile).toBe('');
    expect(ses(parse(d, { env: { AWS_PROFILE: 'prod' } })).credentials.profile).toBe('prod');
  });

  it('replaces variables inside a longer string, several per string', () => {
    const cfg = parse(doc({ store: { url: 'postgres://${PGUSER}@${PGHOST:-localhost}:${PGPORT:-5432}/tajo' } }), { env: { PGUSER: 'svc' } });
    expect(cfg.store.url).toBe('postgres://svc@localhost:5432/tajo');
  });

  it('turns a whole-string variable into a number or a boolean', () => {
    const d = doc({
      server: { port: '${PORT:-8080}' },
      connectors: { 'amazon-ses': { enabled: '${SES_ENABLED:-true}', sns: { allow_http_cert_urls: '${ALLOW_HTTP}' } } },
      delivery: { max_attempts: '${ATTEMPTS}' },
    });
    const cfg = parse(d, { env: { ALLOW_HTTP: 'false', ATTEMPTS: '7' } });
    expect(cfg.server.port).toBe(8080);
    expect(ses(cfg).enabled).toBe(true);
    expect(ses(cfg).sns.allow_http_cert_urls).toBe(false);
    expect(cfg.delivery.max_attempts).toBe(7);
    const cfg2 = parse(d, { env: { PORT: '9090', SES_ENABLED: 'false', ALLOW_HTTP: 'true', ATTEMPTS: '3' } });
    expect(cfg2.server.port).toBe(9090);
    expect(ses(cfg2).enabled).toBe(false);
    expect(ses(cfg2).sns.allow_http_cert_urls).toBe(true);
  });

  it('keeps a number embedded in a longer string a string', () => {
    const cfg = parse(doc({ server: { host: '10.0.0.${N}' } }), { env: { N: '7' } });
    expect(cfg.server.host).toBe('10.0.0.7');
  });

  // BUG (src/config/load.ts, interpolate): a whole-string variable that looks like a number or
  // boolean is coerced whatever the key expects, so a numeric admin token or API key (or an
  // AWS profile named "true") makes the file invalid ("expected string").
  it('keeps a whole-string variable a string where the key expects a string (numeric secrets, profile names)', () => {
    const cfg = parse(
      doc({
        brevo: { api_key: '${BREVO_API_KEY}' },
        server: { admin_token: '${TAJO_ADMIN_TOKEN:-}' },
        connectors: { 'amazon-ses': { credentials: { profile: '${AWS_PROFILE:-}' } } },
      }),
      { env: { BREVO_API_KEY: '1234567890', TAJO_ADMIN_TOKEN: '20240101', AWS_PROFILE: 'true' } },
    );
    expect(cfg.brevo.api_key).toBe('1234567890');
    expect(cfg.server.admin_token).toBe('20240101');
    expect(ses(cfg).credentials.profile).toBe('true');
  });

  it('a missing variable without default is an error naming the variable and the key path', () => {
    const problems = problemsOf(() =>
      parse(doc({ connectors: { 'amazon-ses': { sqs: { queue_url: '${SQS_QUEUE_URL}' } } }, brevo: { api_key: '${BREVO_API_KEY}' } }), { env: {} }),
    );
    const sqs = problems.find((p) => p.includes('SQS_QUEUE_URL'));
    expect(sqs).toBeDefined();
    expect(sqs).toContain('connectors.amazon-ses.sqs.queue_url');
    const key = problems.find((p) => p.includes('BREVO_API_KEY'));
    expect(key).toBeDefined();
    expect(key).toContain('brevo.api_key');
  });

  it('names the array index in the key path of a missing variable', () => {
    const problems = problemsOf(() => parse(doc({ connectors: { 'amazon-ses': { sns: { topic_arns: ['${TOPIC_ARN}'] } } } }), { env: {} }));
    expect(problems.some((p) => p.includes('TOPIC_ARN') && p.includes('connectors.amazon-ses.sns.topic_arns.0'))).toBe(true);
  });
});

describe('invalid configuration: one line per problem', () => {
  const invalid = doc({
    connectors: {
      'amazon-ses': {
        region: 'mars-1',
        regon: 'us-east-1',
        sns: { topic_arns: ['arn:aws:sqs:us-east-1:123456789012:not-a-topic'], max_message_age: 'soon' },
        events: { Open: 'sometimes' },
      },
    },
    brevo: { api_key: API_KEY },
    store: { url: 'mysql://tajo@db/tajo' },
    server: { port: 70000, admin_token: ADMIN_TOKEN },
  });

  it('reports every problem at once, each naming the key path, what was found and what is allowed', () => {
    const problems = problemsOf(() => parse(invalid));
    const expectations: Array<{ path: string; found: string; allowed: RegExp }> = [
      { path: 'connectors.amazon-ses.region', found: '"mars-1"', allowed: /us-east-1/ },
      { path: 'connectors.amazon-ses.sns.topic_arns.0', found: 'arn:aws:sqs:us-east-1:123456789012:not-a-topic', allowed: /arn:aws:sns/ },
      { path: 'connectors.amazon-ses.sns.max_message_age', found: '"soon"', allowed: /15m|24h|30s/ },
      { path: 'connectors.amazon-ses.events.Open', found: '"sometimes"', allowed: /"event".*"attributes".*"both".*"ignore"/ },
      { path: 'store.url', found: 'mysql://tajo@db/tajo', allowed: /sqlite:.*postgres:\/\// },
      { path: 'server.port', found: '70000', allowed: /65535/ },
    ];
    for (const e of expectations) {
      const line = problems.find((p) => p.startsWith(`${e.path}:`));
      expect(line, `a problem line for ${e.path} in:\n${problems.join('\n')}`).toBeDefined();
      expect(line).toContain(e.found);
      expect(line).toMatch(e.allowed);
      expect(line).not.toContain('\n');
    }
    const unknown = problems.find((p) => p.includes('"regon"'));
    expect(unknown).toBeDefined();
    expect(unknown).toContain('connectors.amazon-ses');
    expect(unknown).toMatch(/unknown key/);
    // Exactly one line per problem: nothing reported twice, nothing else.
    expect(problems).toHaveLength(expectations.length + 1);
  });

  // CONTRACT section 1: each line names "what is allowed". For an unknown key the line says
  // only "remove or fix the spelling" (src/config/load.ts, formatIssue, 'unrecognized_keys').
  it('an unknown key line says which keys are allowed there', () => {
    const problems = problemsOf(() => parse(doc({ connectors: { 'amazon-ses': { regon: 'us-east-1' } } })));
    const line = problems.find((p) => p.includes('"regon"'));
    expect(line).toBeDefined();
    expect(line).toMatch(/\bregion\b/);
  });

  it('reports a bad duration, a bad events policy and a bad store URL in their own lines', () => {
    const problems = problemsOf(() =>
      parse(
        doc({
          connectors: { 'amazon-ses': { schedule: { suppressions: '15 minutes' }, events: { Bounce: 'blocklist' } } },
          store: { url: 'redis://cache:6379' },
        }),
      ),
    );
    expect(problems).toHaveLength(3);
    expect(problems.find((p) => p.startsWith('connectors.amazon-ses.schedule.suppressions:'))).toMatch(/"15 minutes".*duration/);
    expect(problems.find((p) => p.startsWith('connectors.amazon-ses.events.Bounce:'))).toMatch(/"blocklist".*allowed/);
    expect(problems.find((p) => p.startsWith('store.url:'))).toMatch(/redis:\/\/cache:6379/);
  });

  it('rejects a port below 0 and a non-integer port', () => {
    expect(problemsOf(() => parse(doc({ server: { port: -1 } })))[0]).toMatch(/^server\.port: found -1;.*0/);
    expect(problemsOf(() => parse(doc({ server: { port: 80.5 } })))[0]).toMatch(/^server\.port: found 80\.5;/);
  });

  it('rejects an unknown top-level key and an unknown brevo plan', () => {
    const problems = problemsOf(() => parse(doc({ brevo: { plan: 'enterprise' }, sevrer: { port: 1 } })));
    expect(problems.some((p) => p.startsWith('brevo.plan:') && p.includes('"enterprise"') && p.includes('"general"'))).toBe(true);
    expect(problems.some((p) => p.includes('"sevrer"') && p.startsWith('(root)'))).toBe(true);
  });

  it('needs the connectors.amazon-ses block with a region', () => {
    expect(problemsOf(() => parse({ brevo: { api_key: API_KEY } }))[0]).toMatch(/^connectors: found nothing; expected/);
    expect(problemsOf(() => parse({ connectors: { 'amazon-ses': {} }, brevo: { api_key: API_KEY } }))[0]).toMatch(
      /^connectors\.amazon-ses\.region: found nothing/,
    );
    expect(problemsOf(() => parseConfig(['a'] as unknown as Record<string, unknown>, { env: {} }))[0]).toMatch(/^\(root\)/);
  });
});

describe('secrets never appear in problems nor in masked output', () => {
  it('does not print brevo.api_key or server.admin_token in any problem line', () => {
    const problems = problemsOf(() =>
      parse(
        doc({
          brevo: { api_key: { nested: API_KEY } },
          server: { admin_token: ['x', ADMIN_TOKEN], port: 'eighty' },
          connectors: { 'amazon-ses': { region: 'nowhere' } },
        }),
      ),
    );
    expect(problems.length).toBeGreaterThanOrEqual(3);
    const all = problems.join('\n');
    expect(all).not.toContain(API_KEY);
    expect(all).not.toContain(ADMIN_TOKEN);
    expect(problems.find((p) => p.startsWith('brevo.api_key:'))).toMatch(/masked/);
    expect(problems.find((p) => p.startsWith('server.admin_token:'))).toMatch(/masked/);
  });

  it('does not print secrets from the environment when another key is invalid', () => {
    const problems = problemsOf(() =>
      parse(doc({ brevo: { api_key: '${BREVO_API_KEY}' }, server: { admin_token: '${TAJO_ADMIN_TOKEN}', port: 'x' } }), {
        env: { BREVO_API_KEY: API_KEY, TAJO_ADMIN_TOKEN: ADMIN_TOKEN },
      }),
    );
    const all = problems.join('\n');
    expect(all).not.toContain(API_KEY);
    expect(all).not.toContain(ADMIN_TOKEN);
  });

  // BUG (src/config/load.ts, formatIssue/describe): an invalid store.url is printed verbatim,
  // so its password lands in the problem line (and on stderr of `config validate`).
  it('does not print the password of an invalid store URL', () => {
    const problems = problemsOf(() => parse(doc({ store: { url: 'postgress://tajo:Hunter2Pass@db:5432/tajo' } })));
    const line = problems.find((p) => p.startsWith('store.url:'));
    expect(line).toBeDefined();
    expect(line).not.toContain('Hunter2Pass');
  });

  it('maskSecrets hides api_key, admin_token and the password of a postgres URL, and copies deeply', () => {
    const cfg = parse(doc({ server: { admin_token: ADMIN_TOKEN }, store: { url: 'postgres://tajo:s3cr3t-pw@db.internal:5432/tajo' } }));
    const masked = maskSecrets(cfg);
    const text = JSON.stringify(masked);
    expect(text).not.toContain(API_KEY);
    expect(text).not.toContain(ADMIN_TOKEN);
    expect(text).not.toContain('s3cr3t-pw');
    expect(masked.brevo.api_key).toBe('****');
    expect(masked.server.admin_token).toBe('****');
    expect(masked.store.url).toBe('postgres://tajo:****@db.internal:5432/tajo');
    // The original is untouched and everything else is kept.
    expect(cfg.brevo.api_key).toBe(API_KEY);
    expect(cfg.store.url).toContain('s3cr3t-pw');
    expect(masked.connectors['amazon-ses'].region).toBe('us-east-1');
    expect(masked.connectors['amazon-ses'].sns.signing_cert_hosts).toEqual([DEFAULT_SIGNING_CERT_HOST]);
  });

  it('maskSecrets leaves an empty secret empty and a URL without password alone', () => {
    const masked = maskSecrets(parse(doc({ store: { url: 'postgresql://tajo@db:5432/tajo' } })));
    expect(masked.server.admin_token).toBe('');
    expect(masked.store.url).toBe('postgresql://tajo@db:5432/tajo');
    expect(maskSecrets({ credentials: { external_id: 'ext-123', session_token: 'tok' }, list: [{ api_key: 'k' }] })).toEqual({
      credentials: { external_id: '****', session_token: '****' },
      list: [{ api_key: '****' }],
    });
  });
});

describe('defaults', () => {
  const cfg = parse(doc());
  const s = ses(cfg);

  it('event policies follow CONTRACT section 1', () => {
    expect(s.events).toEqual({
      Send: 'attributes',
      Delivery: 'attributes',
      Open: 'attributes',
      Click: 'both',
      Bounce: 'both',
      Complaint: 'both',
      Reject: 'event',
      DeliveryDelay: 'event',
      RenderingFailure: 'event',
      Subscription: 'both',
    });
  });

  it('overriding one policy keeps the defaults of the others', () => {
    const e = ses(parse(doc({ connectors: { 'amazon-ses': { events: { Open: 'ignore' } } } }))).events;
    expect(e.Open).toBe('ignore');
    expect(e.Click).toBe('both');
    expect(e.Reject).toBe('event');
  });

  it('schedule, SNS and sync defaults', () => {
    expect(s.enabled).toBe(true);
    expect(s.schedule.suppressions).toBe(15 * 60_000);
    expect(s.schedule.contacts).toBe(24 * 3_600_000);
    expect(s.sns.max_message_age).toBe(3_600_000);
    expect(s.sns.topic_arns).toEqual([]);
    expect(s.sns.auto_confirm_subscriptions).toBe(true);
    expect(s.sns.allow_http_cert_urls).toBe(false);
    expect(s.sns.signing_cert_hosts).toEqual([DEFAULT_SIGNING_CERT_HOST]);
    expect(s.sync).toEqual({ events: true, suppressions: true, contacts: true, account: true });
    expect(s.sqs.raw_message_delivery).toBe('auto');
    expect(s.lists.folder).toBe('Amazon SES');
    expect(s.field_mapping).toEqual({});
  });

  it('the default signing cert host pattern accepts AWS SNS hosts only', () => {
    const re = new RegExp(DEFAULT_SIGNING_CERT_HOST);
    expect(re.test('sns.us-east-1.amazonaws.com')).toBe(true);
    expect(re.test('sns.cn-north-1.amazonaws.com.cn')).toBe(true);
    expect(re.test('sns.us-east-1.amazonaws.com.evil.example')).toBe(false);
    expect(re.test('evil.example/sns.us-east-1.amazonaws.com')).toBe(false);
  });

  it('brevo, store and server defaults', () => {
    expect(cfg.brevo.base_url).toBe('https://api.brevo.com/v3');
    expect(cfg.brevo.plan).toBe('general');
    expect(cfg.store.url).toBe('sqlite:./.tajo/amazon-ses.db');
    expect(cfg.server.port).toBe(8080);
    expect(cfg.server.host).toBe('0.0.0.0');
    expect(cfg.server.admin_token).toBe('');
  });

  it('durations accept ms/s/m/h/d and bare seconds', () => {
    const c = ses(parse(doc({ connectors: { 'amazon-ses': { schedule: { suppressions: '90s', contacts: '7d' }, sns: { max_message_age: 600 } } } })));
    expect(c.schedule.suppressions).toBe(90_000);
    expect(c.schedule.contacts).toBe(7 * 86_400_000);
    expect(c.sns.max_message_age).toBe(600_000);
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('1.5h')).toBe(5_400_000);
    expect(parseDuration('15 minutes')).toBeUndefined();
    expect(parseDuration(-1)).toBeUndefined();
    expect(formatDuration(1500)).toBe('1.5s');
    expect(formatDuration(7 * 86_400_000)).toBe('7d0h');
    expect(formatDuration(90_000_000)).toBe('1d1h');
  });
});

describe('brevo.api_key', () => {
  it('is required by default', () => {
    const problems = problemsOf(() => parse({ connectors: { 'amazon-ses': { region: 'us-east-1' } } }));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^brevo\.api_key: found nothing;/);
  });

  it('is required when its variable is set but empty', () => {
    const problems = problemsOf(() => parse(doc({ brevo: { api_key: '${BREVO_API_KEY:-}' } }), { env: { BREVO_API_KEY: '' } }));
    expect(problems.some((p) => p.startsWith('brevo.api_key:'))).toBe(true);
  });

  it('may be missing with requireBrevoKey: false', () => {
    const cfg = parseConfig({ connectors: { 'amazon-ses': { region: 'us-east-1' } } }, { env: {}, requireBrevoKey: false });
    expect(cfg.brevo.api_key).toBe('');
  });

  // BUG (src/config/load.ts, parseConfig/interpolate): requireBrevoKey: false (used by
  // `status` and `failures`, which never call Brevo) does not cover the usual
  // `api_key: ${BREVO_API_KEY}` of CONTRACT section 1: the unset variable is still an error.
  it('may come from an unset ${BREVO_API_KEY} with requireBrevoKey: false', () => {
    const cfg = parseConfig(
      { connectors: { 'amazon-ses': { region: 'us-east-1' } }, brevo: { api_key: '${BREVO_API_KEY}' } },
      { env: {}, requireBrevoKey: false },
    );
    expect(cfg.brevo.api_key).toBe('');
  });
});

describe('loadConfig from a file', () => {
  it('reads YAML and interpolates', () => {
    const p = file(
      [
        'connectors:',
        '  amazon-ses:',
        '    region: ${AWS_REGION:-eu-central-1}',
        '    sns:',
        "      topic_arns: ['arn:aws:sns:eu-central-1:123456789012:ses-events']",
        '    events:',
        '      Open: ignore',
        'brevo:',
        '  api_key: ${BREVO_API_KEY}',
        'server:',
        '  port: ${PORT:-8081}',
        '',
      ].join('\n'),
    );
    const cfg = loadConfig(p, { env: { BREVO_API_KEY: API_KEY } });
    expect(ses(cfg).region).toBe('eu-central-1');
    expect(ses(cfg).events.Open).toBe('ignore');
    expect(ses(cfg).sns.topic_arns).toEqual(['arn:aws:sns:eu-central-1:123456789012:ses-events']);
    expect(cfg.server.port).toBe(8081);
    expect(cfg.brevo.api_key).toBe(API_KEY);
  });

  it('accepts an object as well as a path', () => {
    expect(ses(loadConfig(doc(), { env: {} })).region).toBe('us-east-1');
  });

  it('a YAML syntax error names the line and column', () => {
    const p = file(['connectors:', '  amazon-ses:', '    region: us-east-1', 'brevo:', `  api_key: ${API_KEY}: oops`, ''].join('\n'));
    const problems = problemsOf(() => loadConfig(p, { env: {} }));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/not valid YAML/);
    expect(problems[0]).toMatch(/line 5, column \d+/);
    expect(problems[0]).toContain(p);
    expect(problems[0]).not.toContain(API_KEY);
  });

  it('a missing file says what to do', () => {
    const p = join(tmp, 'does-not-exist.yaml');
    const problems = problemsOf(() => loadConfig(p, { env: {} }));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain(p);
    expect(problems[0]).toMatch(/does not exist/);
    expect(problems[0]).toMatch(/--config/);
    expect(problems[0]).toMatch(/TAJO_CONFIG/);
  });

  it('an empty file or a list is refused with a hint about connectors:', () => {
    expect(problemsOf(() => loadConfig(file(''), { env: {} }))[0]).toMatch(/connectors:/);
    expect(problemsOf(() => loadConfig(file('- a\n- b\n'), { env: {} }))[0]).toMatch(/connectors:/);
  });
});

describe('configWarnings', () => {
  it('warns about an empty topic allow-list when events are synced', () => {
    const w = configWarnings(parse(doc()));
    expect(w).toHaveLength(1);
    expect(w[0]).toMatch(/topic_arns/);
  });

  it('says nothing for a production-like configuration', () => {
    const cfg = parse(doc({ connectors: { 'amazon-ses': { sns: { topic_arns: ['arn:aws:sns:us-east-1:123456789012:ses'] } } } }));
    expect(configWarnings(cfg)).toEqual([]);
    const noEvents = parse(doc({ connectors: { 'amazon-ses': { sync: { events: false } } } }));
    expect(configWarnings(noEvents)).toEqual([]);
  });

  it('warns about test-only SNS settings', () => {
    const cfg = parse(
      doc({
        connectors: {
          'amazon-ses': {
            sns: { topic_arns: ['arn:aws:sns:us-east-1:123456789012:ses'], allow_http_cert_urls: true, signing_cert_hosts: ['^127\\.0\\.0\\.1$'] },
          },
        },
      }),
    );
    const w = configWarnings(cfg);
    expect(w).toHaveLength(2);
    expect(w.some((x) => x.includes('allow_http_cert_urls'))).toBe(true);
    expect(w.some((x) => x.includes('signing_cert_hosts'))).toBe(true);
  });

  it('refuses an invalid signing cert host regex', () => {
    const problems = problemsOf(() => parse(doc({ connectors: { 'amazon-ses': { sns: { signing_cert_hosts: ['(unclosed'] } } } })));
    expect(problems[0]).toMatch(/^connectors\.amazon-ses\.sns\.signing_cert_hosts\.0: found "\(unclosed";.*regular expression/);
  });
});
