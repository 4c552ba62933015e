// Durable acknowledgements without blocking the event loop. Commits run with
// synchronous=NORMAL (written to the WAL, not yet flushed); an acknowledgement then waits
// for an fdatasync of the WAL file done on libuv's thread pool. One flush covers every
// commit written before it started, so concurrent acknowledgements share it (group commit),
// and the thread keeps verifying requests meanwhile. SQLite recovers committed WAL frames
// after a power cut, so a flushed commit is as durable as one made with synchronous=FULL.
import { open, fdatasync, closeSync } from 'node:fs';
import { TajoError } from '../../core/errors.js';

interface Waiter {
  gen: number;
  resolve: () => void;
  reject: (err: Error) => void;
}

export class WalSync {
  private fd: number | undefined;
  private written = 0;
  private flushing = false;
  private waiters: Waiter[] = [];

  constructor(
    private readonly walPath: string,
    /** The flush itself (tests count or fail it). */
    private readonly flushFile: (fd: number, cb: (err: NodeJS.ErrnoException | null) => void) => void = fdatasync,
  ) {}

  /** Call right after a commit: resolves once that commit is on disk. */
  afterCommit(): Promise<void> {
    const gen = ++this.written;
    return new Promise((resolve, reject) => {
      this.waiters.push({ gen, resolve, reject });
      this.flush();
    });
  }

  private flush(): void {
    if (this.flushing || this.waiters.length === 0) return;
    this.flushing = true;
    // Everything committed up to now is in the file; this flush covers it.
    const covered = this.written;
    const done = (err: NodeJS.ErrnoException | null) => {
      this.flushing = false;
      const settled = this.waiters.filter((w) => w.gen <= covered);
      this.waiters = this.waiters.filter((w) => w.gen > covered);
      for (const w of settled) {
        if (err) w.reject(new TajoError('store_unavailable', `flushing the SQLite WAL to disk failed: ${err.message}`, { retryable: true, cause: err }));
        else w.resolve();
      }
      this.flush();
    };
    if (this.fd !== undefined) return this.flushFile(this.fd, done);
    open(this.walPath, 'r+', (err, fd) => {
      if (err) return done(err);
      this.fd = fd;
      this.flushFile(fd, done);
    });
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
