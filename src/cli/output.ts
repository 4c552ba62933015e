// Output for commands: human text on a TTY, JSON lines with --json (or when piped and asked).
export interface Out {
  json: boolean;
  tty: boolean;
  /** One JSON line with --json; the human text otherwise. */
  emit(obj: unknown, human: () => string): void;
  line(s: string): void;
  err(s: string): void;
  progress(label: string, done: number, total: number | undefined, extra?: string): void;
  endProgress(): void;
}

export function makeOut(json: boolean, stdout: NodeJS.WriteStream = process.stdout, stderr: NodeJS.WriteStream = process.stderr): Out {
  const tty = Boolean(stdout.isTTY);
  let progressShown = false;
  let lastJsonProgress = 0;
  return {
    json,
    tty,
    emit(obj, human) {
      if (json) stdout.write(JSON.stringify(obj) + '\n');
      else stdout.write(human().replace(/\n?$/, '\n'));
    },
    line(s) {
      stdout.write(s + '\n');
    },
    err(s) {
      stderr.write(s + '\n');
    },
    progress(label, done, total, extra = '') {
      if (json || !tty) {
        // Without a terminal: JSON lines (stdout with --json, else stderr), at most one a second.
        const now = Date.now();
        if (now - lastJsonProgress < 1000 && (!total || done < total)) return;
        lastJsonProgress = now;
        (json ? stdout : stderr).write(JSON.stringify({ progress: label, done, total: total ?? null, ...(extra ? { info: extra } : {}) }) + '\n');
        return;
      }
      const width = 30;
      const frac = total ? Math.min(1, done / total) : 0;
      const bar = total ? '█'.repeat(Math.round(frac * width)).padEnd(width, '░') : '';
      const pct = total ? ` ${(frac * 100).toFixed(0).padStart(3)}%` : '';
      stdout.write(`\r${label.padEnd(14)} ${bar}${pct} ${done}${total ? `/${total}` : ''} ${extra}\x1b[K`);
      progressShown = true;
    },
    endProgress() {
      if (progressShown) stdout.write('\n');
      progressShown = false;
    },
  };
}

export function pad(rows: string[][]): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n');
}
