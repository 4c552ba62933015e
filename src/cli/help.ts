// Help for every command: `tajo-ses <command> --help` prints this and does nothing else (no
// config read, no store opened, no server started), so it is safe to type anywhere.

export const COMMON_OPTIONS = `Options for every command:
  --config F   configuration file (default ./tajo.yaml, then $TAJO_CONFIG)
  --json       JSON lines instead of human output
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
  status [--json]                        queues, lag, dead letters, cursors, Brevo rate-limit budget
  failures list|show ID|retry ID|--all|discard ID|--all [--code C]
                                         dead letters: source, planned Brevo call, Brevo's error
  config validate                        validate the configuration and print it with secrets masked

${COMMON_OPTIONS}
`;

export interface CommandHelp {
  usage: string;
  summary: string;
  options: Array<[string, string]>;
  examples: string[];
  exitCodes: Array<[number, string]>;
}

const CONFIG_EXIT: [number, string] = [2, 'usage error or invalid configuration (one line per problem, naming the key)'];

export const COMMAND_HELP: Record<string, CommandHelp> = {
  demo: {
    usage: 'tajo-ses demo [--events N] [--contacts N] [--keep] [--json]',
    summary:
      'Starts a Brevo simulator, an SES API simulator and a signing SNS simulator on 127.0.0.1 and the connector on a temporary\n' +
      'SQLite store, runs a backfill, publishes signed notifications for every SES event type (with replays and duplicates), waits\n' +
      'until everything is delivered and compares what Brevo holds with what was published. Needs no config and no credentials.',
    options: [
      ['--events N', 'SES events to publish (default 300, at least 14)'],
      ['--contacts N', 'distinct recipients (default 60)'],
      ['--keep', 'keep the temporary directory (store, logs) and print its path'],
    ],
    examples: ['tajo-ses demo', 'tajo-ses demo --events 5000 --contacts 500 --json'],
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
      'then stops taking requests, finishes in-flight Brevo calls and exits. Creates the SES_* attributes in Brevo at start.',
    options: [],
    examples: ['BREVO_API_KEY=... tajo-ses serve', 'tajo-ses serve --config /etc/tajo/tajo.yaml'],
    exitCodes: [[0, 'stopped cleanly after a signal'], [1, 'a fatal error (logged)'], CONFIG_EXIT],
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
  status: {
    usage: 'tajo-ses status [--config F] [--json]',
    summary: 'Reads the store: inbox, operations by state and priority class, lag, dead letters, stream cursors, Brevo budget.',
    options: [],
    examples: ['tajo-ses status', 'tajo-ses status --json'],
    exitCodes: [[0, 'status printed'], [1, 'the store could not be read'], CONFIG_EXIT],
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
};

export function commandHelp(cmd: string): string | undefined {
  const h = COMMAND_HELP[cmd];
  if (!h) return undefined;
  const col = (rows: Array<[string, string]>) => {
    const w = Math.max(...rows.map(([a]) => a.length));
    return rows.map(([a, b]) => `  ${a.padEnd(w)}   ${b}`).join('\n');
  };
  const parts = [`Usage: ${h.usage}`, '', h.summary];
  if (h.options.length) parts.push('', 'Options:', col(h.options));
  parts.push('', COMMON_OPTIONS, '', 'Examples:', ...h.examples.map((e) => `  ${e}`));
  parts.push('', 'Exit codes:', col(h.exitCodes.map(([c, d]) => [String(c), d])));
  return parts.join('\n') + '\n';
}

/** True when the arguments after the command ask for help (anywhere, like most CLIs). */
export function wantsHelp(args: string[]): boolean {
  return args.includes('--help') || args.includes('-h');
}
