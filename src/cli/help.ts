// Help for every command: `tajo-ses <command> --help` prints this and does nothing else (no
// config read, no store opened, no server started), so it is safe to type anywhere.

export const COMMON_OPTIONS = `Options for every command:
  --config F   configuration file (default ./tajo.yaml, then $TAJO_CONFIG)
  --json       JSON lines instead of human output
  -h, --help   this help`;

/** The simulators read no configuration. */
const SIM_COMMON_OPTIONS = `Options for every simulator:
  --port N     port to listen on (default 0: any free port, printed on start)
  --host H     address to listen on (default 127.0.0.1)
  --json       JSON lines instead of human output (the first line says where it listens)
  -h, --help   this help`;

export const USAGE = `tajo-ses: Amazon SES -> Brevo connector

Usage: tajo-ses <command> [options]      (tajo-ses <command> --help for one command)

Commands:
  demo [--events N] [--contacts N] [--keep]
                                         run everything on loopback simulators and compare what Brevo received
  serve                                  webhook server, delivery workers and scheduled syncs
  backfill [--stream S]... [--full] [--dry-run]
                                         historical sync of contact lists, contacts, suppressions, account;
                                         resumes from the stored cursor (S: contact_lists, contacts, suppressions, account)
  check [--fix]                          verify SES and Brevo set-up and print a fix for each failure
  reconcile [--fix] [--since D]          read Brevo back and report drift from what the connector wrote; exit 1 on drift
  status [--json] [--check]              queues, lag, dead letters, cursors, Brevo budget and health
  failures list|show ID|retry ID|--all|discard ID|--all [--code C]
                                         dead letters: source, planned Brevo call, Brevo's error
  config validate                        validate the configuration and print it with secrets masked
  init [--local] [--force]               write a commented tajo.yaml: every key, its default and why
  sim brevo|ses|sns|sqs [options]        the Brevo, SES API, SNS and SQS simulators on 127.0.0.1, to rehearse
                                         outages against a real 'serve' (tajo-ses sim --help)

${COMMON_OPTIONS}
`;

export interface CommandHelp {
  usage: string;
  summary: string;
  options: Array<[string, string]>;
  examples: string[];
  exitCodes: Array<[number, string]>;
  /** The options block under the command's own; default COMMON_OPTIONS. */
  common?: string;
}

const CONFIG_EXIT: [number, string] = [2, 'usage error or invalid configuration (one line per problem, naming the key)'];

export const COMMAND_HELP: Record<string, CommandHelp> = {
  demo: {
    usage: 'tajo-ses demo [--events N] [--contacts N] [--intake sns|sqs|eventbridge] [--keep] [--json]',
    summary:
      'Starts a Brevo simulator, an SES API simulator and a signing SNS simulator on 127.0.0.1 and the connector on a temporary\n' +
      'SQLite store, runs a backfill, publishes signed notifications for every SES event type (with replays and duplicates), waits\n' +
      'until everything is delivered and compares what Brevo holds with what was published. Needs no config and no credentials.',
    options: [
      ['--events N', 'SES events to publish (default 300, at least 14)'],
      ['--contacts N', 'distinct recipients (default 60)'],
      ['--intake I', 'sns (the webhook, default), sqs (SNS -> SQS through the SQS simulator) or eventbridge (the API destination route)'],
      ['--keep', 'keep the temporary directory (the SQLite store and a tajo.yaml reading it) and print its path'],
    ],
    examples: ['tajo-ses demo', 'tajo-ses demo --events 5000 --contacts 500 --json', 'tajo-ses demo --keep   # then: tajo-ses status --config <dir>/tajo.yaml'],
    exitCodes: [
      [0, 'Brevo matches what SES published'],
      [1, 'a mismatch (the differences are printed)'],
      [2, 'usage error'],
    ],
  },
  serve: {
    usage: 'tajo-ses serve [--config F]',
    summary:
      'Runs the SNS webhook (POST /webhooks/amazon-ses), the delivery workers and the scheduled syncs until SIGTERM or SIGINT,\n' +
      'then stops taking requests, finishes in-flight Brevo calls and exits. Creates the SES_* attributes in Brevo (retried in the\n' +
      'background while Brevo fails; delivery waits for them, the webhook does not).',
    options: [],
    examples: ['BREVO_API_KEY=... tajo-ses serve', 'tajo-ses serve --config /etc/tajo/tajo.yaml'],
    exitCodes: [[0, 'stopped cleanly after a signal'], [1, 'a fatal error (logged), or another serve already runs on this SQLite store'], CONFIG_EXIT],
  },
  backfill: {
    usage: 'tajo-ses backfill [--stream S]... [--full] [--dry-run] [--config F] [--json]',
    summary:
      'Reads what SES already knows (contact lists and topics, contacts, the account suppression list, account status) at the SES\n' +
      'control-plane quota and writes it to Brevo in bulk. Resumes from the stored cursors; a killed run loses nothing.',
    options: [
      ['--stream S', 'only this stream (repeatable): contact_lists, contacts, suppressions, account'],
      ['--full', 'ignore the cursors and read everything again (every write is an idempotent upsert)'],
      ['--dry-run', 'print the planned Brevo changes (counts and a sample); write nothing, move no cursor'],
    ],
    examples: ['tajo-ses backfill', 'tajo-ses backfill --stream suppressions', 'tajo-ses backfill --full --dry-run'],
    exitCodes: [
      [0, 'complete'],
      [1, 'failed (the cursor is kept: run it again to resume)'],
      [2, 'usage error, invalid configuration, or every stream off'],
      [130, 'interrupted (Ctrl-C or SIGTERM; the cursor is kept)'],
    ],
  },
  check: {
    usage: 'tajo-ses check [--fix] [--config F] [--json]',
    summary:
      'Verifies SES credentials and permissions, account status, that a configuration set publishes to an allowed SNS topic, the\n' +
      'Brevo key, attributes and lists. Prints a fix for each failure.',
    options: [['--fix', 'create the missing SES_* attributes in Brevo']],
    examples: ['tajo-ses check', 'tajo-ses check --fix', 'tajo-ses check --json'],
    exitCodes: [[0, 'every check passed (warnings allowed)'], [1, 'at least one check failed'], CONFIG_EXIT],
  },
  reconcile: {
    usage: 'tajo-ses reconcile [--fix] [--since D] [--samples N] [--config F] [--json]',
    summary:
      "Reads Brevo back (GET /contacts page by page, and the members of the connector's lists) under the rate governor and compares\n" +
      'it with what the connector holds: the blocklist it set, the SES_* dates and SES_SUPPRESSED it wrote (the ledger), the list\n' +
      'memberships a contacts backfill recorded or removed. Prints the drift by kind with counts and samples. With --fix, queues the corrections\n' +
      "in the outbox and delivers them (like 'backfill'); a 'serve' running on the same store may deliver them too.",
    options: [
      ['--fix', 'queue the corrections (blocklist, attributes, list memberships) and wait until Brevo has them'],
      ['--since D', 'compare only the contacts Brevo reports modified in the last D (a duration such as 24h); lists are read whole'],
      ['--samples N', 'samples printed per kind (default 10)'],
    ],
    examples: ['tajo-ses reconcile', 'tajo-ses reconcile --fix', 'tajo-ses reconcile --since 24h --json'],
    exitCodes: [
      [0, 'no drift (with --fix: none found, nothing queued)'],
      [1, 'drift found (with --fix: corrections queued; run it again to see none), or Brevo or the store failed'],
      CONFIG_EXIT,
    ],
  },
  status: {
    usage: 'tajo-ses status [--config F] [--json] [--check [--max-lag SECONDS]]',
    summary:
      'Reads the store: inbox, operations by state and priority class, lag, dead letters, stream cursors, Brevo budget and health, inbox retention (message ids and bodies held, last prune).\n' +
      'With --check, prints only what needs an operator (dead letters, Brevo failing for over 60 s, lag over --max-lag).',
    options: [
      ['--check', 'exit 1 when something needs an operator, and say what'],
      ['--max-lag SECONDS', 'with --check: the lag that needs an operator (default 900)'],
    ],
    examples: ['tajo-ses status', 'tajo-ses status --json', 'tajo-ses status --check --max-lag 300'],
    exitCodes: [
      [0, 'status printed; with --check: nothing needs an operator'],
      [1, 'with --check: something needs an operator; or the store could not be read'],
      CONFIG_EXIT,
    ],
  },
  failures: {
    usage: 'tajo-ses failures list|show ID|retry ID|retry --all|discard ID [--config F] [--json]',
    summary:
      "Dead letters: operations Brevo refused for good (or after delivery.max_attempts). 'retry' queues them again for a\n" +
      "running 'serve'; 'discard' drops them for good.",
    options: [
      ['list [--limit N] [--code C]', 'id, kind, contact, Brevo code and message, attempts'],
      ['show ID', 'one dead letter: source record keys, the planned Brevo call, Brevo’s answer'],
      ['retry ID | retry --all [--code C]', 'queue one, every, or every dead letter with Brevo code C again'],
      ['discard ID | discard --all [--code C]', 'drop dead letters for good'],
    ],
    examples: ['tajo-ses failures list', 'tajo-ses failures show 42', 'tajo-ses failures retry --all --code invalid_parameter'],
    exitCodes: [[0, 'done'], [1, 'no such dead letter (the id is unknown or not dead), or the store could not be read'], CONFIG_EXIT],
  },
  config: {
    usage: 'tajo-ses config validate [--config F] [--json]',
    summary: 'Validates the configuration file and prints the effective configuration with secrets masked, and any warnings.',
    options: [],
    examples: ['tajo-ses config validate', 'BREVO_API_KEY=x tajo-ses config validate --config tajo.yaml --json'],
    exitCodes: [[0, 'valid'], CONFIG_EXIT],
  },
  init: {
    usage: 'tajo-ses init [--local] [--force] [--region R] [--topic ARN]... [--store URL] [--config F] [--json]',
    summary:
      'Writes a commented tajo.yaml (or the --config file): every key at its default with a line on why to change it, secrets\n' +
      'as ${BREVO_API_KEY} and ${TAJO_ADMIN_TOKEN:-} read from the environment. On a terminal it asks for the SES region, the SNS\n' +
      'topics and the store URL (Enter keeps the default); otherwise it asks nothing. It never overwrites a file without --force.',
    options: [
      ['--local', `point SES, Brevo and SNS at the simulators of 'tajo-ses sim' on this machine (a rehearsal; see the README)`],
      ['--force', 'overwrite an existing file'],
      ['--region R', 'SES region (default us-east-1)'],
      ['--topic ARN', 'SNS topic SES publishes to (repeatable; default none, or the simulator topic with --local)'],
      ['--store URL', 'sqlite:PATH or postgres://user@host:5432/db (default sqlite:./.tajo/amazon-ses.db)'],
    ],
    examples: [
      'tajo-ses init',
      'tajo-ses init --region eu-west-1 --topic arn:aws:sns:eu-west-1:123456789012:ses-events',
      'tajo-ses init --local --config rehearsal.yaml',
    ],
    exitCodes: [
      [0, 'written'],
      [2, 'the file exists (and no --force), a usage error, or an answer the configuration refuses'],
    ],
  },
  sim: {
    usage: 'tajo-ses sim brevo|ses|sns|sqs [options]',
    summary:
      "The simulators as long-running commands, to rehearse outages against a real 'serve' without writing code. Each prints\n" +
      'where it listens as its first line, a progress line every few seconds while something changes, and stops on Ctrl-C\n' +
      "(SIGINT) or SIGTERM. 'tajo-ses init --local' writes a tajo.yaml pointing at them.",
    options: [
      ['brevo', 'the Brevo API v3 (contacts, imports, events, rate limits) with injected failures and latency'],
      ['ses', 'the SES v2 API (contact lists, contacts, suppression list, account) with its 1 req/s throttle'],
      ['sns', "publishes signed SES events to the connector's webhook and serves its signing certificate"],
      ['sqs', 'an SQS queue (JSON protocol) with a dead-letter queue, for the SQS intake (sqs.queue_url, sqs.endpoint)'],
    ],
    examples: [
      'tajo-ses sim brevo --port 4010 --fail-rate 0.3',
      'tajo-ses sim ses --port 4020',
      'tajo-ses sim sns --url http://127.0.0.1:8080/webhooks/amazon-ses',
    ],
    exitCodes: [
      [0, 'stopped by a signal'],
      [2, 'usage error (run tajo-ses sim brevo --help, and so on)'],
    ],
    common: SIM_COMMON_OPTIONS,
  },
  'sim brevo': {
    usage:
      'tajo-ses sim brevo [--port N] [--host H] [--plan P] [--fail-rate F] [--hang-rate F] [--outage S] [--latency MS] [--import-delay MS] [--events-batch-bucket B] [--api-key K] [--json]',
    summary:
      'The Brevo API v3 simulator: contacts, attributes, lists, /contacts/import, /events/batch, with the rate limits and\n' +
      'x-sib-ratelimit-* headers of a plan. Point brevo.base_url at the URL it prints. GET <origin>/sim/stats says what it holds;\n' +
      'POST <origin>/sim/faults with a JSON body such as {"errorRate":1} changes the failures while it runs (an outage, then {"errorRate":0}).',
    options: [
      ['--plan P', 'general, advanced, extended or unlimited: its rate-limit table (default general)'],
      ['--fail-rate F', 'fraction 0..1 of calls answered 500/502/503, nothing applied (default 0)'],
      ['--throttle-rate F', 'fraction 0..1 of calls answered 429 within budget (default 0)'],
      ['--drop-rate F', 'fraction 0..1 of calls whose connection is cut before they are applied (default 0)'],
      ['--reset-after-apply-rate F', 'fraction 0..1 of calls applied, then their connection cut without an answer (default 0)'],
      ['--bare-throttle-rate F', 'fraction 0..1 of calls answered 429 without x-sib-ratelimit-* headers (default 0)'],
      ['--hang-rate F', 'fraction 0..1 of calls never answered nor applied; the connection is cut after --hang-ms (default 0)'],
      ['--hang-ms MS', 'how long a hung call is held (default 60000)'],
      ['--malformed-rate F', 'fraction 0..1 of calls applied and answered 200 with a broken JSON body (default 0)'],
      ['--outage S', 'every call answered 503 for the first S seconds (default 0); later: POST /sim/faults {"outageSeconds":S}'],
      ['--latency MS', 'added to every call (default 0)'],
      ['--import-delay MS', 'how long a /contacts/import stays queued before it is applied (default 50)'],
      ['--events-batch-bucket B', 'events (default) or other: the rate-limit bucket /v3/events/batch counts in (other: the hourly one)'],
      ['--api-key K', 'the key it accepts in the api-key header (default sim-key)'],
      ['--seed N', 'makes the injected failures repeatable'],
    ],
    examples: [
      'tajo-ses sim brevo --port 4010 --fail-rate 0.3',
      'tajo-ses sim brevo --latency 2000 --plan unlimited --json',
      `curl -X POST http://127.0.0.1:4010/sim/faults -d '{"errorRate":1}'   # Brevo down until errorRate 0`,
    ],
    exitCodes: [
      [0, 'stopped by a signal'],
      [1, 'could not listen (the port is taken?)'],
      [2, 'usage error'],
    ],
    common: SIM_COMMON_OPTIONS,
  },
  'sim ses': {
    usage: 'tajo-ses sim ses [--port N] [--host H] [--contacts N] [--suppressed N] [--rps N] [--json]',
    summary:
      'The SES v2 API simulator, seeded with generated contact lists, topics, contacts and suppressed addresses, throttled like\n' +
      'SES (429 TooManyRequestsException). Point connectors.amazon-ses.endpoint at the URL it prints; any AWS credentials work.',
    options: [
      ['--contacts N', 'contacts, spread over the contact lists (default 1000)'],
      ['--suppressed N', 'addresses on the account suppression list (default 100)'],
      ['--lists N', 'contact lists (default 1)'],
      ['--topics N', 'topics per contact list (default 3)'],
      ['--rps N', 'requests per second it accepts across all calls (default 1, like SES; 0: no throttle)'],
      ['--seed N', 'same seed, same data (default 1)'],
    ],
    examples: ['tajo-ses sim ses --port 4020', 'tajo-ses sim ses --contacts 100000 --suppressed 5000 --rps 2'],
    exitCodes: [
      [0, 'stopped by a signal'],
      [1, 'could not listen (the port is taken?)'],
      [2, 'usage error'],
    ],
    common: SIM_COMMON_OPTIONS,
  },
  'sim sqs': {
    usage: 'tajo-ses sim sqs [--port N] [--host H] [--queue NAME] [--visibility S] [--max-receive N] [--json]',
    summary:
      'The SQS API simulator (the JSON protocol of @aws-sdk/client-sqs): one queue and its dead-letter queue (NAME-dlq). Point\n' +
      'connectors.amazon-ses.sqs.queue_url and sqs.endpoint at what it prints; any AWS credentials work.',
    options: [
      ['--queue NAME', 'the queue name (default ses-events)'],
      ['--visibility S', 'its visibility timeout in seconds (default 30)'],
      ['--max-receive N', 'receives before a message moves to the dead-letter queue (default 5)'],
    ],
    examples: ['tajo-ses sim sqs --port 4030', 'tajo-ses sim sqs --visibility 5 --max-receive 2'],
    exitCodes: [
      [0, 'stopped by a signal'],
      [1, 'could not listen (the port is taken?)'],
      [2, 'usage error'],
    ],
    common: SIM_COMMON_OPTIONS,
  },
  'sim sns': {
    usage: 'tajo-ses sim sns --url U [--rate N] [--count N] [--topic ARN] [--port N] [--host H] [--json]',
    summary:
      'Publishes signed SES events (a realistic mix of every type) to the webhook at U the way SNS does: a subscription\n' +
      'confirmation first, then notifications, retrying unanswered, 429 and 5xx deliveries with backoff. It serves its signing\n' +
      'certificate over HTTP; the connector accepts it only with, under connectors.amazon-ses.sns, signing_cert_hosts:\n' +
      "['^127\\.0\\.0\\.1$'] and allow_http_cert_urls: true (it prints this on start).",
    options: [
      ['--url U', "the connector's webhook, e.g. http://127.0.0.1:8080/webhooks/amazon-ses (required)"],
      ['--rate N', 'notifications per second (default 5)'],
      ['--count N', 'stop after N notifications (default 0: until stopped)'],
      ['--topic ARN', 'the topic they come from (default arn:aws:sns:us-east-1:123456789012:ses-events)'],
      ['--recipients N', 'distinct recipient addresses (default 50)'],
      ['--retries N', 'retries of a delivery that is not acknowledged (default 5)'],
      ['--seed N', 'same seed, same events (default 1)'],
    ],
    examples: [
      'tajo-ses sim sns --url http://127.0.0.1:8080/webhooks/amazon-ses',
      'tajo-ses sim sns --url http://127.0.0.1:8080/webhooks/amazon-ses --rate 200 --count 10000',
    ],
    exitCodes: [
      [0, 'stopped by a signal, or --count notifications published and all acknowledged'],
      [1, 'with --count: some were never acknowledged (the reasons are printed)'],
      [2, 'usage error'],
    ],
    common: SIM_COMMON_OPTIONS,
  },
};

/** The help entry for `cmd args...`: a command of its own, or one with subcommands of their own (`sim brevo`). */
export function helpName(cmd: string, args: string[]): string {
  const sub = args[0];
  return sub !== undefined && COMMAND_HELP[`${cmd} ${sub}`] ? `${cmd} ${sub}` : cmd;
}

export function commandHelp(cmd: string): string | undefined {
  const h = COMMAND_HELP[cmd];
  if (!h) return undefined;
  const col = (rows: Array<[string, string]>) => {
    const w = Math.max(...rows.map(([a]) => a.length));
    return rows.map(([a, b]) => `  ${a.padEnd(w)}   ${b}`).join('\n');
  };
  const parts = [`Usage: ${h.usage}`, '', h.summary];
  if (h.options.length) parts.push('', 'Options:', col(h.options));
  parts.push('', h.common ?? COMMON_OPTIONS, '', 'Examples:', ...h.examples.map((e) => `  ${e}`));
  parts.push('', 'Exit codes:', col(h.exitCodes.map(([c, d]) => [String(c), d])));
  return parts.join('\n') + '\n';
}

/** True when the arguments after the command ask for help (anywhere, like most CLIs). */
export function wantsHelp(args: string[]): boolean {
  return args.includes('--help') || args.includes('-h');
}
