// Long-running commands (serve, the simulators) stop on SIGINT or SIGTERM and exit 0.

/** Resolves with the first SIGINT/SIGTERM, or with undefined when `signal` aborts first; removes its listeners either way. */
export function untilSignal(signal?: AbortSignal): Promise<NodeJS.Signals | undefined> {
  return new Promise((resolve) => {
    const finish = (sig: NodeJS.Signals | undefined) => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      signal?.removeEventListener('abort', onAbort);
      resolve(sig);
    };
    const onInt = () => finish('SIGINT');
    const onTerm = () => finish('SIGTERM');
    const onAbort = () => finish(undefined);
    process.once('SIGINT', onInt);
    process.once('SIGTERM', onTerm);
    if (signal?.aborted) finish(undefined);
    else signal?.addEventListener('abort', onAbort, { once: true });
  });
}
