// persist(): a record of work already done is tried again while the store fails, up to the deadline.
import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { NotPersisted, persist } from './persist.js';

const log = pino({ level: 'silent' });

describe('persist', () => {
  it('tries again until the store takes the write', async () => {
    let calls = 0;
    await persist(
      async () => {
        if (++calls < 3) throw new Error('connect ECONNREFUSED');
      },
      { what: 'outcomes', deadline: Infinity, now: Date.now, log, stopped: () => false },
    );
    expect(calls).toBe(3);
  });

  it('gives up with NotPersisted (carrying the cause) once the deadline has passed', async () => {
    let now = 0;
    let calls = 0;
    const cause = new Error('disk full');
    const err = await persist(
      async () => {
        calls++;
        now += 600;
        throw cause;
      },
      { what: 'outcomes', deadline: 1000, now: () => now, log, stopped: () => false },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotPersisted);
    expect((err as NotPersisted).cause).toBe(cause);
    expect(calls).toBe(2);
  });

  it('gives up at once when the worker is stopping', async () => {
    let calls = 0;
    const err = await persist(
      async () => {
        calls++;
        throw new Error('down');
      },
      { what: 'outcomes', deadline: Infinity, now: Date.now, log, stopped: () => true },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotPersisted);
    expect(calls).toBe(1);
  });
});
