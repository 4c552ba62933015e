// A long-running `tajo-ses` command (serve, sim ...) as a child process: its output as it
// comes, a wait for a line that says it is ready, and a stop by signal with its exit code.
import { spawn, type ChildProcess } from 'node:child_process';
import { BIN } from './cli-run.js';

export interface CliProcess {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the first stdout line that `match` accepts (parsed when it is JSON). */
  waitForLine<T = unknown>(match: (line: string, json: T | undefined) => boolean, timeoutMs?: number): Promise<{ line: string; json: T | undefined }>;
  /** The exit code once it ends on its own. */
  exited(timeoutMs?: number): Promise<number | null>;
  /** Sends the signal and resolves with the exit code (null when the signal killed it). */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
}

function tryJson<T>(line: string): T | undefined {
  try {
    return JSON.parse(line) as T;
  } catch {
    return undefined;
  }
}

export function startCli(args: string[], opts: { cwd: string; env?: Record<string, string> }): CliProcess {
  const base: Record<string, string> = { PATH: process.env.PATH ?? '', HOME: opts.cwd, NO_COLOR: '1' };
  const child = spawn(process.execPath, [BIN, ...args], { cwd: opts.cwd, env: { ...base, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const listeners = new Set<() => void>();
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    out += d;
    for (const l of [...listeners]) l();
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const describe = () => `${args.join(' ')}\n--- stdout\n${out}\n--- stderr\n${err}`;
  const withTimeout = <T>(p: Promise<T>, ms: number, what: string): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${what} within ${ms} ms: tajo-ses ${describe()}`)), ms);
      p.then(
        (v) => {
          clearTimeout(t);
          resolve(v);
        },
        (e: unknown) => {
          clearTimeout(t);
          reject(e instanceof Error ? e : new Error(String(e)));
        },
      );
    });
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    waitForLine<T>(match: (line: string, json: T | undefined) => boolean, timeoutMs = 30_000) {
      const found = new Promise<{ line: string; json: T | undefined }>((resolve, reject) => {
        const check = () => {
          for (const line of out.split('\n').slice(0, -1)) {
            const json = tryJson<T>(line);
            if (match(line, json)) {
              listeners.delete(check);
              resolve({ line, json });
              return;
            }
          }
        };
        listeners.add(check);
        check();
        void exit.then((code) => {
          if (!listeners.has(check)) return;
          check();
          if (listeners.delete(check)) reject(new Error(`exited with ${code} before the line came: tajo-ses ${describe()}`));
        });
      });
      return withTimeout(found, timeoutMs, 'no such line');
    },
    exited: (timeoutMs = 60_000) => withTimeout(exit, timeoutMs, 'did not exit'),
    stop(signal = 'SIGTERM', timeoutMs = 30_000) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return withTimeout(exit, timeoutMs, `did not stop on ${signal}`);
    },
  };
}
