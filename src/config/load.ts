import { readFileSync, existsSync } from 'node:fs';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import type { z } from 'zod';
import { configSchema, SECRET_KEYS, DEFAULT_SIGNING_CERT_HOST, type TajoConfig } from './schema.js';
import { TajoError } from '../core/errors.js';

export class ConfigError extends TajoError<'invalid_config'> {
  readonly problems: string[];
  constructor(problems: string[]) {
    super('invalid_config', `invalid configuration:\n${problems.map((p) => `  ${p}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
  /** `demo` runs without a Brevo key (it points at its own simulator). */
  requireBrevoKey?: boolean;
}

const VAR = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/** The schema's secret keys, and any key named like a secret, so that a section added later is covered too. */
function isSecretKey(key: string): boolean {
  return SECRET_KEYS.has(key) || /(^|_)((ssl)?password|passwd|secret|token|api_?key)$/i.test(key);
}

function isSecretPath(path: (string | number | symbol)[]): boolean {
  const last = path[path.length - 1];
  return typeof last === 'string' && isSecretKey(last);
}

function describe(v: unknown, secret: boolean): string {
  if (v === undefined) return 'nothing';
  if (secret) return '(secret, masked)';
  const s = JSON.stringify(typeof v === 'string' ? maskUrlPassword(v) : v);
  return s === undefined ? String(v) : s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/** Replaces ${VAR} / ${VAR:-default} in every string value, collecting one problem per missing variable. */
function interpolate(node: unknown, env: NodeJS.ProcessEnv, path: string[], problems: string[], optional: Set<string>): unknown {
  if (typeof node === 'string') {
    const key = path.join('.');
    return node.replace(VAR, (_m, name: string, def: string | undefined) => {
      const v = env[name];
      if (v !== undefined && v !== '') return v;
      if (def !== undefined) return def;
      if (!optional.has(key)) problems.push(`${key || '(root)'}: environment variable ${name} is not set; set it, or write \${${name}:-default}`);
      return '';
    });
  }
  if (Array.isArray(node)) return node.map((v, i) => interpolate(v, env, [...path, String(i)], problems, optional));
  if (node && typeof node === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(node)) out[k] = interpolate(v, env, [...path, k], problems, optional);
    return out;
  }
  return node;
}

/** The keys a schema allows at `path`, to suggest them for an unknown key. */
function allowedKeys(path: PropertyKey[]): string[] {
  let cur: unknown = configSchema;
  const unwrap = (s: unknown): unknown => {
    let x = s as { _zod?: { def?: { innerType?: unknown; in?: unknown; type?: string } } };
    for (let i = 0; i < 10 && x?._zod?.def; i++) {
      const d = x._zod.def;
      if (d.innerType) x = d.innerType as typeof x;
      else if (d.type === 'pipe' && d.in) x = d.in as typeof x;
      else break;
    }
    return x;
  };
  for (const k of path) {
    const s = unwrap(cur) as { shape?: Record<string, unknown> };
    if (!s?.shape) return [];
    cur = s.shape[String(k)];
  }
  const s = unwrap(cur) as { shape?: Record<string, unknown> };
  return s?.shape ? Object.keys(s.shape) : [];
}

function getAt(obj: unknown, path: PropertyKey[]): unknown {
  let cur: unknown = obj;
  for (const k of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[k];
  }
  return cur;
}

function formatIssue(issue: z.core.$ZodIssue, input: unknown): string {
  const path = issue.path.map(String).join('.') || '(root)';
  const secret = isSecretPath(issue.path);
  const found = getAt(input, issue.path);
  switch (issue.code) {
    case 'unrecognized_keys': {
      const allowed = allowedKeys(issue.path);
      return `${path}: unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}; allowed here: ${allowed.join(', ') || '(none)'}`;
    }
    case 'invalid_type':
      return `${path}: found ${describe(found, secret)}; expected ${issue.expected}`;
    case 'invalid_value':
      return `${path}: found ${describe(found, secret)}; allowed: ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    default:
      return `${path}: found ${describe(found, secret)}; ${issue.message}`;
  }
}

/** Parses and validates an already-read document (object form of tajo.yaml). */
export function parseConfig(doc: unknown, opts: LoadOptions = {}): TajoConfig {
  const env = opts.env ?? process.env;
  const problems: string[] = [];
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new ConfigError(['(root): expected a mapping with `connectors:` (see README, Configuration)']);
  }
  // `status` and `failures` never call Brevo: an unset ${BREVO_API_KEY} must not stop them.
  const optional = new Set(opts.requireBrevoKey === false ? ['brevo.api_key'] : []);
  const input = interpolate(doc, env, [], problems, optional);
  const res = configSchema.safeParse(input);
  if (!res.success) {
    const missingVars = new Set(problems.map((p) => p.slice(0, p.indexOf(':'))));
    for (const issue of res.error.issues) if (!missingVars.has(issue.path.map(String).join('.'))) problems.push(formatIssue(issue, input));
  }
  if (problems.length > 0 || !res.success) throw new ConfigError(problems);
  const cfg = res.data;
  if (opts.requireBrevoKey !== false && cfg.brevo.api_key === '') {
    throw new ConfigError(['brevo.api_key: found nothing; set it (usually api_key: ${BREVO_API_KEY}) to a Brevo v3 API key']);
  }
  return cfg;
}

export function resolveConfigPath(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  if (flag) return flag;
  if (existsSync('./tajo.yaml')) return './tajo.yaml';
  return env.TAJO_CONFIG || './tajo.yaml';
}

/** `loadConfig(path | object)`: the library entry point (CONTRACT.md section 6). */
export function loadConfig(source: string | Record<string, unknown>, opts: LoadOptions = {}): TajoConfig {
  if (typeof source !== 'string') return parseConfig(source, opts);
  let text: string;
  try {
    text = readFileSync(source, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError([
      code === 'ENOENT'
        ? `(file): ${source} does not exist; pass --config FILE, set TAJO_CONFIG, or create tajo.yaml (see README)`
        : `(file): cannot read ${source} (${code ?? 'error'})`,
    ]);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text, { prettyErrors: true });
  } catch (err) {
    const where = err instanceof YAMLParseError && err.linePos ? ` at line ${err.linePos[0].line}, column ${err.linePos[0].col}` : '';
    const first = err instanceof Error ? (err.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '') : String(err);
    throw new ConfigError([`(file): ${source} is not valid YAML${where}: ${first}`]);
  }
  return parseConfig(doc, opts);
}

// URL user-info runs to the LAST '@' (a password may hold '@', '/', '?' or '#', and a user name
// '@'), so the password is everything from the first ':' after '//' to there. When a later '@'
// is not user-info (an address in a query), more is masked than needed, never less.
const URL_PASSWORD = /(\/\/[^:/\s]*:)\S*@/g;
// Secret parameters in a URL query or a libpq keyword string (password, sslpassword, tokens, keys).
const SECRET_PARAM = /(^|[?&;\s])((?:ssl)?password|passwd|pwd|(?:access_|auth_)?token|api[_-]?key|(?:client_)?secret)=[^&;\s]*/gi;

/** Masks the password of any URL in `v` (user:****@) and the value of every secret parameter (password=****). */
export function maskUrlPassword(v: string): string {
  return v.replace(URL_PASSWORD, '$1****@').replace(SECRET_PARAM, '$1$2=****');
}

/** A deep copy with every secret replaced, for printing and logging. */
export function maskSecrets<T>(value: T): T {
  const walk = (v: unknown, key: string | undefined): unknown => {
    if (key !== undefined && isSecretKey(key)) return typeof v === 'string' && v.length > 0 ? '****' : v;
    if (typeof v === 'string') return maskUrlPassword(v);
    if (Array.isArray(v)) return v.map((x) => walk(x, undefined));
    if (v && typeof v === 'object') {
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x, k)]));
    }
    return v;
  };
  return walk(value, undefined) as T;
}

/** Start-up warnings: settings that are legal but risky in production. */
export function configWarnings(cfg: TajoConfig): string[] {
  const ses = cfg.connectors['amazon-ses'];
  const out: string[] = [];
  if (ses.sns.allow_http_cert_urls) out.push('sns.allow_http_cert_urls is true: SNS signing certificates may be fetched over plain HTTP (tests only)');
  if (ses.sns.signing_cert_hosts.some((h) => h !== DEFAULT_SIGNING_CERT_HOST))
    out.push('sns.signing_cert_hosts is overridden: certificates from non-AWS hosts are trusted (tests only)');
  if (ses.sync.events && ses.sns.topic_arns.length === 0)
    out.push('sns.topic_arns is empty: every SNS notification will be refused (403 topic_not_allowed); list your SES event topics');
  return out;
}
