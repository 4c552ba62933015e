// Runs `tajo-ses` as users do: a child process over bin/tajo-ses.js (which loads dist/).
// `npm test` builds first; when a test file runs alone, ensureBuilt() rebuilds dist if a
// source file is newer than dist/cli/main.js.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openStore } from '../src/store/index.js';
import type { Store } from '../src/store/port.js';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const BIN = join(ROOT, 'bin', 'tajo-ses.js');
const MAIN_JS = join(ROOT, 'dist', 'cli', 'main.js');

function newestSource(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestSource(p));
    else if (e.name.endsWith('.ts') && !/\.i?test\.ts$/.test(e.name)) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

/** Rebuilds dist/ when a source file is newer than dist/cli/main.js (`npm test` builds first). */
export function ensureBuilt(): void {
  const stale = !existsSync(MAIN_JS) || statSync(MAIN_JS).mtimeMs < newestSource(join(ROOT, 'src'));
  if (!stale) return;
  try {
    execFileSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'pipe' });
  } catch (err) {
    // Type errors still emit JavaScript; only a missing entry point is fatal here.
    if (!existsSync(MAIN_JS)) throw err;
  }
}

/** A clean environment for the child (no inherited Brevo key, token or config path), plus `extra`. */
export function cleanEnv(home: string, extra: Record<string, string> = {}): Record<string, string> {
  return { PATH: process.env.PATH ?? '', HOME: home, NO_COLOR: '1', ...extra };
}

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs the CLI to its end in `cwd`; `env` is the child's whole environment (default: cleanEnv(cwd)). */
export function runCli(args: string[], opts: { cwd: string; env?: Record<string, string>; timeoutMs?: number }): Promise<CliRun> {
  const t0 = Date.now();
  return new Promise((resolvePromise) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { cwd: opts.cwd, env: opts.env ?? cleanEnv(opts.cwd), timeout: opts.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolvePromise({ code, stdout: String(stdout), stderr: String(stderr), ms: Date.now() - t0 });
      },
    );
  });
}

export interface Spawned {
  child: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts the CLI and returns at once (for `serve`, and for commands a test interrupts). */
export function spawnCli(args: string[], opts: { cwd: string; env: Record<string, string> }): Spawned {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
  return { child, output: () => out, exited };
}

/** Opens (and migrates) the SQLite store a CLI test's config names, runs `fn`, closes it. */
export async function withSqliteStore<T>(file: string, fn: (s: Store) => Promise<T>): Promise<T> {
  const store = await openStore(`sqlite:${file}`);
  try {
    await store.migrate();
    return await fn(store);
  } finally {
    await store.close();
  }
}
