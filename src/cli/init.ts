// `tajo-ses init`: writes a commented tajo.yaml with every key a user sets, at its default,
// and secrets as ${VAR} references. `--local` points it at the simulators (`tajo-ses sim`)
// for a rehearsal on one machine. On a terminal it asks for region, topics and store.
import { mkdirSync, existsSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { parse as parseYaml } from 'yaml';
import { ConfigError, parseConfig, resolveConfigPath } from '../config/load.js';
import { DEFAULT_SIGNING_CERT_HOST } from '../config/schema.js';
import { parse, UsageError } from './args.js';
import { DEMO_TOPIC } from './demo.js';
import type { Out } from './output.js';

/** Ports of a local rehearsal: what `init --local` writes and the README's `sim` commands use. */
export const LOCAL_PORTS = { brevo: 4010, ses: 4020, serve: 8080 } as const;
export const DEFAULT_STORE_URL = 'sqlite:./.tajo/amazon-ses.db';
const DEFAULT_REGION = 'us-east-1';

export interface InitAnswers {
  region: string;
  topicArns: string[];
  storeUrl: string;
  /** Point SES, Brevo and the SNS certificate checks at the local simulators. */
  local: boolean;
}

/** A YAML scalar in single quotes, where a backslash is just a backslash (regexes stay readable). */
function quote(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

/** Text that YAML would read as something else (a number, a flow collection, a comment) gets quoted. */
function scalar(s: string): string {
  return /^[A-Za-z0-9_./:@-]+$/.test(s) && !/^[0-9.]+$/.test(s) && !/^(true|false|null|yes|no|on|off|~)$/i.test(s) ? s : quote(s);
}

const COMMENT_COLUMN = 39;

function line(indent: number, key: string, value: string, why: string): string {
  const text = `${' '.repeat(indent)}${key}:${value === '' ? '' : ` ${value}`}`;
  return why ? `${text.padEnd(COMMENT_COLUMN - 1)} # ${why}` : text;
}

export function renderInitConfig(a: InitAnswers): string {
  const local = a.local;
  const topics = a.topicArns.length ? `[${a.topicArns.map(quote).join(', ')}]` : '[]';
  const L: string[] = [
    '# tajo.yaml: configuration of the Amazon SES -> Brevo connector (tajo-ses), written by `tajo-ses init`.',
    '# Every key is shown at its default unless said otherwise; delete what you do not change.',
    '# ${VAR} and ${VAR:-default} are read from the environment: secrets stay out of this file.',
    '# Check it with: BREVO_API_KEY=... tajo-ses config validate',
  ];
  if (local) {
    L.push(
      '#',
      '# LOCAL REHEARSAL: SES, Brevo and SNS are the simulators of `tajo-ses sim`, on this machine:',
      `#   tajo-ses sim brevo --port ${LOCAL_PORTS.brevo} --fail-rate 0.3`,
      `#   tajo-ses sim ses --port ${LOCAL_PORTS.ses}`,
      '#   AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local tajo-ses serve',
      `#   tajo-ses sim sns --url http://127.0.0.1:${LOCAL_PORTS.serve}/webhooks/amazon-ses`,
      '# Never point this file at real SES or Brevo: it trusts certificates from 127.0.0.1 over plain HTTP.',
    );
  }
  L.push(
    '',
    'connectors:',
    '  amazon-ses:',
    line(4, 'enabled', 'true', 'false keeps the settings but reads nothing from SES'),
    line(4, 'region', scalar(a.region), 'the SES region your mail is sent from (required)'),
    line(4, 'credentials', '', 'all empty: the AWS SDK default chain (environment, ~/.aws, instance role)'),
    line(6, 'profile', '""', 'a named profile from ~/.aws/config'),
    line(6, 'role_arn', '""', 'a role to assume, e.g. for another account'),
    line(6, 'external_id', '""', "the external id that role's trust policy asks for"),
    local
      ? line(4, 'endpoint', `http://127.0.0.1:${LOCAL_PORTS.ses}`, `tajo-ses sim ses --port ${LOCAL_PORTS.ses} (default "": AWS itself)`)
      : line(4, 'endpoint', '""', 'SES API endpoint override; "" is AWS itself (a URL for `tajo-ses sim ses`)'),
    line(4, 'sync', '', 'what to bring from SES to Brevo'),
    line(6, 'events', 'true', 'SES events published through SNS to the webhook'),
    line(6, 'suppressions', 'true', 'the account suppression list, to the Brevo blocklist'),
    line(6, 'contacts', 'true', 'contact lists, topics and contacts, to Brevo lists'),
    line(6, 'account', 'true', 'account status (sending paused, sandbox), for check and status'),
    line(4, 'schedule', '', 'how often serve syncs each of them again (suppressions: only what changed)'),
    line(6, 'suppressions', '15m', ''),
    line(6, 'contacts', '24h', ''),
    line(6, 'account', '1h', ''),
    line(6, 'reconcile', '0', 'read Brevo back and correct drift (tajo-ses reconcile --fix) this often; 0: never'),
    '    sns:',
    local
      ? line(6, 'topic_arns', topics, 'the topic `tajo-ses sim sns` publishes to by default')
      : line(6, 'topic_arns', topics, 'the SNS topics SES publishes events to; others are refused (empty: every one)'),
    line(6, 'auto_confirm_subscriptions', 'true', 'confirm a subscription to those topics without you'),
    line(6, 'max_message_age', '1h', 'older SNS messages are refused as replays'),
    local
      ? line(6, 'signing_cert_hosts', `[${quote('^127\\.0\\.0\\.1$')}]`, 'the simulator signs; the default trusts only sns.<region>.amazonaws.com')
      : line(6, 'signing_cert_hosts', `[${quote(DEFAULT_SIGNING_CERT_HOST)}]`, 'where signing certificates may come from'),
    local
      ? line(6, 'allow_http_cert_urls', 'true', 'the simulator serves its certificate over plain HTTP (default false)')
      : line(6, 'allow_http_cert_urls', 'false', 'true only for simulators: certificates over plain HTTP'),
    line(6, 'endpoint', '""', 'SNS API endpoint override, read by check (the subscriptions\' retry policy); "" is AWS itself'),
    line(4, 'sqs', '', 'optional second intake: SNS -> SQS, polled by serve (every process may poll)'),
    line(6, 'queue_url', '""', 'https://sqs.REGION.amazonaws.com/ACCOUNT/QUEUE; "" polls nothing'),
    line(
      6,
      'raw_message_delivery',
      'auto',
      'auto or true: raw SES records accepted (unsigned: the queue policy guards them); false: signed SNS envelopes only',
    ),
    line(6, 'endpoint', '""', 'SQS API endpoint override; "" is AWS itself (a URL for a simulator)'),
    line(6, 'pollers', '2', 'concurrent long polls (20 s, 10 messages each)'),
    line(6, 'poison', 'redrive', 'a message that can never be stored: redrive (left for the DLQ) or delete; recorded in failures either way'),
    line(4, 'eventbridge', '', 'POST /webhooks/amazon-ses/eventbridge, for an EventBridge API destination'),
    line(6, 'header_name', 'x-api-key', "the header the API destination's connection sends (API key authorization)"),
    line(6, 'secret', '${TAJO_EVENTBRIDGE_SECRET:-}', 'its value; empty: the route answers 404'),
    line(6, 'endpoint', '""', 'EventBridge API endpoint override, read by check (the rule and API destination); "" is AWS itself'),
    line(4, 'bounce_policy', '', 'transient (soft) bounces are counted per recipient (SES_SOFT_BOUNCE_COUNT)'),
    line(6, 'soft_bounce_blocklist_after', '0', 'N soft bounces within the window blocklist the contact; 0: never'),
    line(6, 'soft_bounce_window', '7d', 'how far back soft bounces count'),
    line(4, 'field_mapping', '{}', 'SES contact attribute -> Brevo attribute, e.g. { attributes.firstName: FIRSTNAME }'),
    '    contacts:',
    line(6, 'fetch_attributes', 'false', 'read each contact (1 SES call each) for field_mapping'),
    '    backfill:',
    line(6, 'checkpoint_rows', '10000', 'rows read between saved cursors: fuller imports; a stopped run reads at most this many again'),
    line(4, 'events', '', 'per SES event type: event (Brevo custom event), attributes (SES_*), both, or ignore'),
    line(6, 'Send', 'attributes', 'high volume: an event each would drown automations'),
    line(6, 'Delivery', 'attributes', ''),
    line(6, 'Open', 'attributes', 'inflated by privacy proxies that open every mail'),
    line(6, 'Click', 'both', ''),
    line(6, 'Bounce', 'both', 'a permanent bounce blocklists, whatever the policy'),
    line(6, 'Complaint', 'both', 'a complaint blocklists, whatever the policy'),
    line(6, 'Reject', 'event', ''),
    line(6, 'DeliveryDelay', 'event', ''),
    line(6, 'RenderingFailure', 'event', ''),
    line(6, 'Subscription', 'both', 'an UnsubscribeAll blocklists, whatever the policy'),
    '    lists:',
    line(6, 'folder', scalar('Amazon SES'), 'Brevo folder with one list per SES contact list and topic'),
    line(4, 'ses_rate_limit', '1', 'SES control-plane requests per second (the SES quota; raise it only if AWS did)'),
    'brevo:',
    local
      ? line(2, 'api_key', '${BREVO_API_KEY:-sim-key}', 'the key `tajo-ses sim brevo` accepts unless --api-key')
      : line(2, 'api_key', '${BREVO_API_KEY}', 'a Brevo v3 API key, from the environment (required)'),
    local
      ? line(2, 'base_url', `http://127.0.0.1:${LOCAL_PORTS.brevo}/v3`, `tajo-ses sim brevo --port ${LOCAL_PORTS.brevo} (default https://api.brevo.com/v3)`)
      : line(2, 'base_url', 'https://api.brevo.com/v3', 'a URL of `tajo-ses sim brevo` to rehearse'),
    line(2, 'plan', 'general', "general, advanced or extended: Brevo's rate limits to start from"),
    line(2, 'timeout', '30s', 'per Brevo call; a call that times out is retried'),
    'store:',
    line(2, 'url', scalar(a.storeUrl), 'queue and state; postgres://user@host:5432/db to share it between instances'),
    '  retention:',
    line(4, 'bodies', '7d', 'raw SNS bodies of planned messages are dropped after this'),
    line(4, 'dedupe_keys', '30d', 'message ids kept this long, so a replay stays a duplicate (at least 1d and bodies)'),
    line(4, 'every', '10m', 'how often serve prunes, in small batches'),
    'server:',
    line(2, 'port', String(LOCAL_PORTS.serve), 'the SNS webhook (POST /webhooks/amazon-ses), /metrics, /admin, /ui'),
    local ? line(2, 'host', '127.0.0.1', 'this machine only (default 0.0.0.0)') : line(2, 'host', '0.0.0.0', 'every interface; SNS must reach it over HTTPS'),
    line(2, 'admin_token', '${TAJO_ADMIN_TOKEN:-}', 'bearer token for /admin and /ui; empty: loopback clients only'),
    line(2, 'engine_thread', 'true', 'deliver on a thread of its own, so SNS is answered fast'),
    line(2, 'request_timeout', '20s', 'a request not complete by then is cut (SNS gives up after 15 s)'),
    line(2, 'headers_timeout', '10s', 'time for the request headers (slow clients)'),
    line(2, 'keep_alive_timeout', '5s', 'idle keep-alive connections; behind a load balancer set it above its idle timeout'),
    line(2, 'max_connections', '1024', 'open connections at most; more are refused'),
    'delivery:',
    line(2, 'max_attempts', '12', 'tries before an operation becomes a dead letter (tajo-ses failures)'),
    line(2, 'concurrency', '4', "parallel contact writes, within Brevo's rate budget"),
    line(2, 'batch_size', '200', 'events per /events/batch call'),
    line(2, 'backoff_base', '1s', 'first retry delay, doubled at each try, with jitter...'),
    line(2, 'backoff_max', '15m', "...up to this; a 429 waits for Brevo's reset instead"),
    line(2, 'linger', '1s', 'a partial Brevo call waits for more until its oldest write waited this long (fewer calls; a blocklisting waits 1 s at most)'),
    'log:',
    line(2, 'level', 'info', 'fatal, error, warn, info, debug (+ every Brevo and SES call), trace or silent'),
    line(2, 'format', 'auto', 'pretty (readable lines), json, or auto: pretty on a terminal, json otherwise'),
  );
  return L.join('\n') + '\n';
}

/** The problems `config validate` would report for these answers (the key left for the environment aside). */
export function initProblems(a: InitAnswers): string[] {
  try {
    parseConfig(parseYaml(renderInitConfig(a)), { env: {}, requireBrevoKey: false });
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
}

export interface Ask {
  question(prompt: string): Promise<string>;
}

/** Asks for region, topics and store on a terminal; an empty answer takes the default, a wrong one is asked again. */
export async function askInitAnswers(ask: Ask, defaults: InitAnswers, say: (s: string) => void): Promise<InitAnswers> {
  let answers = { ...defaults };
  const field = async (prompt: string, shown: string, key: string, apply: (text: string) => InitAnswers): Promise<void> => {
    for (;;) {
      const text = (await ask.question(`${prompt} [${shown}]: `)).trim();
      if (text === '') return;
      const next = apply(text);
      const problems = initProblems(next).filter((p) => p.startsWith(key));
      if (problems.length === 0) {
        answers = next;
        return;
      }
      for (const p of problems) say(p);
    }
  };
  await field('SES region', answers.region, 'connectors.amazon-ses.region', (t) => ({ ...answers, region: t }));
  await field(
    'SNS topic ARN(s) SES publishes to, comma-separated',
    answers.topicArns.join(', ') || 'none yet',
    'connectors.amazon-ses.sns.topic_arns',
    (t) => ({
      ...answers,
      topicArns: t
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    }),
  );
  await field('Store URL (sqlite:PATH or postgres://...)', answers.storeUrl, 'store.url', (t) => ({ ...answers, storeUrl: t }));
  return answers;
}

export async function initCommand(argv: string[], out: Out): Promise<number> {
  const { flags } = parse(argv, {
    force: { type: 'boolean' },
    local: { type: 'boolean' },
    region: { type: 'string' },
    topic: { type: 'string', multiple: true },
    store: { type: 'string' },
  });
  const path = resolveConfigPath(flags.config as string | undefined);
  const force = flags.force === true;
  if (!force && existsSync(path)) throw new UsageError(`${path} already exists; it was left as it is (pass --force to overwrite it)`);
  const local = flags.local === true;
  let answers: InitAnswers = {
    region: (flags.region as string | undefined) ?? DEFAULT_REGION,
    topicArns: (flags.topic as string[] | undefined) ?? (local ? [DEMO_TOPIC] : []),
    storeUrl: (flags.store as string | undefined) ?? DEFAULT_STORE_URL,
    local,
  };
  const given = flags.region !== undefined || flags.topic !== undefined || flags.store !== undefined;
  // Questions only for a person at a terminal who gave no answers on the command line.
  if (!local && !given && !out.json && process.stdin.isTTY && process.stdout.isTTY) {
    const rl = createInterface({ input: process.stdin, output: process.stdout });
    try {
      answers = await askInitAnswers(rl, answers, (s) => out.err(s));
    } finally {
      rl.close();
    }
  }
  const problems = initProblems(answers);
  if (problems.length) throw new ConfigError(problems);
  mkdirSync(dirname(path), { recursive: true });
  try {
    writeFileSync(path, renderInitConfig(answers), { flag: force ? 'w' : 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new UsageError(`${path} already exists; it was left as it is (pass --force to overwrite it)`);
    throw err;
  }
  out.emit({ ok: true, path, local }, () =>
    local
      ? [
          `Wrote ${path} for a local rehearsal against the simulators. In separate terminals:`,
          `  tajo-ses sim brevo --port ${LOCAL_PORTS.brevo} --fail-rate 0.3`,
          `  tajo-ses sim ses --port ${LOCAL_PORTS.ses}`,
          `  AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local tajo-ses serve`,
          `  tajo-ses sim sns --url http://127.0.0.1:${LOCAL_PORTS.serve}/webhooks/amazon-ses`,
          `  tajo-ses status`,
        ].join('\n')
      : [
          `Wrote ${path}: every key at its default, with why; secrets come from the environment.`,
          `Next: export BREVO_API_KEY=...; tajo-ses config validate; tajo-ses check; tajo-ses serve`,
        ].join('\n'),
  );
  return 0;
}
