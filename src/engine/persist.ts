// Writes that record work already done elsewhere (Brevo applied a call; an envelope was
// planned) must not be lost to a store that is briefly away (PostgreSQL unreachable, a full
// disk): they are tried again while the work is still leased to this worker, instead of
// being dropped and redone, which would send to Brevo twice or stall until the lease ends.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { errorMessage } from '../core/errors.js';

/** Between two tries (the last one repeats). */
export const PERSIST_RETRY_MS = [100, 250, 500, 1000, 2000];

/** Tries stop this long before the lease runs out (another worker may take the work then). */
export const PERSIST_LEASE_MARGIN_MS = 10_000;

/** The store did not take the write before the deadline (or the worker stopped). */
export class NotPersisted extends Error {
  constructor(
    readonly what: string,
    override readonly cause: unknown,
  ) {
    super(`${what} not recorded: ${errorMessage(cause)}`);
  }
}

export interface PersistOptions {
  /** What is recorded, for the log and the error (e.g. `delivery outcomes`). */
  what: string;
  /** No try starts after this (the worker's clock). */
  deadline: number;
  now: () => number;
  log: Logger;
  /** True once the worker must give up (stop's grace is over). */
  stopped: () => boolean;
  signal?: AbortSignal;
}

export async function persist(write: () => Promise<unknown>, o: PersistOptions): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await write();
      if (attempt > 0) o.log.info({ attempts: attempt + 1 }, `${o.what} recorded once the store answered again`);
      return;
    } catch (err) {
      if (o.stopped() || o.now() >= o.deadline) throw new NotPersisted(o.what, err);
      if (attempt === 0) o.log.warn({ err: errorMessage(err) }, `could not record ${o.what}; trying again until the store answers`);
      await sleep(PERSIST_RETRY_MS[Math.min(attempt, PERSIST_RETRY_MS.length - 1)], undefined, o.signal ? { signal: o.signal } : {}).catch(() => undefined);
    }
  }
}
