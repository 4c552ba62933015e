// The connector's log: pino, as JSON lines for machines or as readable lines for people.
import { writeSync } from 'node:fs';
import { isatty } from 'node:tty';
import { pino, type DestinationStream, type Logger } from 'pino';

export type LogFormat = 'auto' | 'pretty' | 'json';

const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };

/** A value as it reads on a line: bare when it has no space or quote, else JSON. */
function show(v: unknown): string {
  if (typeof v === 'string') return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  if (v !== null && typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/** One pino JSON line as `2026-03-01T10:00:00.000Z INFO  message key=value ...` (the line itself when it is not JSON). */
export function prettyLine(json: string): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.endsWith('\n') ? json : `${json}\n`;
  }
  const { time, level, msg, ...rest } = o;
  const lvl = typeof level === 'number' ? (LEVEL_NAMES[level] ?? String(level)) : String(level ?? '');
  const fields = Object.entries(rest)
    .map(([k, v]) => `${k}=${show(v)}`)
    .join(' ');
  return `${String(time ?? '')} ${lvl.padEnd(5)} ${String(msg ?? '')}${fields ? ` ${fields}` : ''}\n`;
}

/** `auto`: pretty when `fd` is a terminal. */
export function resolveFormat(format: LogFormat, fd: number): 'pretty' | 'json' {
  return format === 'auto' ? (isatty(fd) ? 'pretty' : 'json') : format;
}

/** Pino's secrets redaction: every entry goes through it, whatever the format. */
const REDACT = { paths: ['*.api_key', '*.admin_token', 'api_key', 'admin_token', 'headers["api-key"]'], censor: '****' };

export function createLogger(level: string, opts: { fd?: number; format?: LogFormat } = {}): Logger {
  const fd = opts.fd ?? 2;
  const format = resolveFormat(opts.format ?? 'auto', fd);
  const dest: DestinationStream =
    format === 'pretty' ? { write: (line: string) => void writeSync(fd, prettyLine(line.trimEnd())) } : pino.destination({ fd, sync: true });
  return pino({ level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime, redact: REDACT }, dest);
}
