// Who holds a lease: host, pid and a random tag. On one host a dead pid means the lease
// can be released at once, instead of waiting for it to expire.
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';

/** How often a process writes its sign of life into the store; `status` counts it alive for HEARTBEAT_STALE_MS. */
export const HEARTBEAT_MS = 5_000;
export const HEARTBEAT_STALE_MS = 20_000;

/** The store lease held by the backfill (manual or scheduled) running against a store. */
export const BACKFILL_LEASE = 'backfill';

export function makeOwnerId(): string {
  return `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
}

export function isOwnerGone(owner: string): boolean {
  const [host, pidText] = owner.split(':');
  if (host !== hostname()) return false;
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
