// Argument parsing shared by the commands: strict options, messages that name the command's
// options, and number flags checked against their range (a usage error, exit 2).
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { errorMessage, TajoError } from '../core/errors.js';

export type Flags = Record<string, string | boolean | string[] | undefined>;

export class UsageError extends TajoError<'usage'> {
  constructor(message: string) {
    super('usage', message);
  }
}

export function parse(argv: string[], options: ParseArgsConfig['options']): { flags: Flags; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      options: { config: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' }, ...options },
      allowPositionals: true,
      strict: true,
    });
    return { flags: values as Flags, positionals };
  } catch (err) {
    throw new UsageError(parseArgsMessage(err, Object.keys(options ?? {})));
  }
}

/** parseArgs' own messages name no command and suggest nothing: say which options exist. */
function parseArgsMessage(err: unknown, options: string[]): string {
  const code = (err as { code?: string }).code;
  const known = [...options.map((o) => `--${o}`), '--config', '--json', '--help'].join(', ');
  const opt = /'(-{1,2}[^']*)'/.exec(errorMessage(err))?.[1];
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return `unknown option ${opt ?? ''}; this command takes ${known} (see --help)`;
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') return `${opt ?? 'an option'} needs a value (or takes none); see --help`;
  return `${errorMessage(err)} (see --help)`;
}

export function intFlag(v: unknown, name: string, def: number, min: number, max: number): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${name}: found ${JSON.stringify(v)}; expected a whole number from ${min} to ${max}`);
  return n;
}

/** A decimal number in [min, max], e.g. a fraction of requests or requests per second. */
export function numberFlag(v: unknown, name: string, def: number, min: number, max: number): number {
  if (v === undefined) return def;
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  if (!Number.isFinite(n) || n < min || n > max) throw new UsageError(`--${name}: found ${JSON.stringify(v)}; expected a number from ${min} to ${max}`);
  return n;
}

/** One of a fixed set of words. */
export function choiceFlag<T extends string>(v: unknown, name: string, def: T, allowed: readonly T[]): T {
  if (v === undefined) return def;
  if (!(allowed as readonly unknown[]).includes(v)) throw new UsageError(`--${name}: found ${JSON.stringify(v)}; allowed: ${allowed.join(', ')}`);
  return v as T;
}
