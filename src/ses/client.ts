// The SES v2 client: the AWS SDK with its default credential chain (environment, shared
// config and SSO profiles, container and instance roles), an optional role to assume, and
// one limiter shared by every control-plane call, applied to each attempt the SDK makes
// (its adaptive retries sit above the limiter, so a retry also waits for its turn).
import { SESv2Client, type SESv2ClientConfig } from '@aws-sdk/client-sesv2';
import type { FinalizeRequestMiddleware, InitializeMiddleware } from '@smithy/types';
import type { Logger } from 'pino';
import { fromIni, fromTemporaryCredentials } from '@aws-sdk/credential-providers';
import type { SesConnectorConfig } from '../config/schema.js';

/**
 * Spaces requests at `rps` per second; FIFO so a long backfill cannot starve a `check`. Each
 * request is spaced from the moment the previous one was actually let go, not from when it was
 * due: a timer that fires late (a busy event loop) must not bring the next request closer.
 */
export class RateLimiter {
  private lastAt = -Infinity;
  private tail: Promise<void> = Promise.resolve();
  private readonly intervalMs: number;
  calls = 0;

  constructor(
    rps: number,
    private readonly now: () => number = Date.now,
    private readonly sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
  ) {
    // 5% under the quota: SES counts arrivals, and network jitter would otherwise push a
    // request now and then into the previous second (a 429 the SDK then has to back off from).
    this.intervalMs = rps === Infinity ? 0 : (1000 / rps) * 1.05;
  }

  take(): Promise<void> {
    this.calls++;
    const turn = this.tail.then(async () => {
      for (let wait = this.lastAt + this.intervalMs - this.now(); wait > 0; wait = this.lastAt + this.intervalMs - this.now()) await this.sleep(wait);
      this.lastAt = this.now();
    });
    this.tail = turn.catch(() => undefined);
    return turn;
  }

  /** Seconds needed for `n` more calls at this rate. */
  secondsFor(n: number): number {
    return (n * this.intervalMs) / 1000;
  }
}

export interface SesClientOptions {
  limiter?: RateLimiter;
  maxAttempts?: number;
  /** Static credentials for simulators and tests; the default chain otherwise. */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** At debug level, one line per SES command: operation, HTTP status, attempts, ms, request id (never a credential or a body). */
  log?: Logger;
}

interface SesMetadata {
  $metadata?: { httpStatusCode?: number; requestId?: string; attempts?: number };
}

/** The credentials settings of `connectors.amazon-ses` (profile, role), shared by the SES and SQS clients; undefined: the SDK default chain. */
export function awsCredentials(cfg: SesConnectorConfig, fixed?: SesClientOptions['credentials']): SESv2ClientConfig['credentials'] {
  let credentials: SESv2ClientConfig['credentials'] = fixed;
  if (!credentials && cfg.credentials.profile) credentials = fromIni({ profile: cfg.credentials.profile });
  if (cfg.credentials.role_arn) {
    credentials = fromTemporaryCredentials({
      params: {
        RoleArn: cfg.credentials.role_arn,
        RoleSessionName: 'tajo-connector-amazon-ses',
        ...(cfg.credentials.external_id ? { ExternalId: cfg.credentials.external_id } : {}),
      },
      ...(credentials ? { masterCredentials: credentials } : {}),
      clientConfig: { region: cfg.region },
    });
  }
  return credentials;
}

export function createSesClient(cfg: SesConnectorConfig, opts: SesClientOptions = {}): { client: SESv2Client; limiter: RateLimiter } {
  const limiter = opts.limiter ?? new RateLimiter(cfg.ses_rate_limit);
  const credentials = awsCredentials(cfg, opts.credentials);
  const client = new SESv2Client({
    region: cfg.region,
    ...(cfg.endpoint ? { endpoint: cfg.endpoint } : {}),
    ...(credentials ? { credentials } : {}),
    retryMode: 'adaptive',
    maxAttempts: opts.maxAttempts ?? 8,
  });
  const limit: FinalizeRequestMiddleware<object, object> = (next) => async (args) => {
    await limiter.take();
    return next(args);
  };
  client.middlewareStack.addRelativeTo(limit as never, { name: 'tajoSesRateLimit', relation: 'after', toMiddleware: 'retryMiddleware', override: true });
  const log = opts.log;
  if (log) {
    const trace: InitializeMiddleware<object, object> = (next, context) => async (args) => {
      const t0 = performance.now();
      const line = (m: SesMetadata['$metadata'], error?: string) =>
        log.isLevelEnabled('debug') &&
        log.debug(
          {
            call: 'ses',
            operation: context.commandName,
            status: m?.httpStatusCode ?? error,
            attempts: m?.attempts,
            ms: Math.round(performance.now() - t0),
            requestId: m?.requestId,
          },
          'SES call',
        );
      try {
        const out = await next(args);
        line((out.output as SesMetadata).$metadata);
        return out;
      } catch (err) {
        line((err as SesMetadata).$metadata, (err as Error).name);
        throw err;
      }
    };
    client.middlewareStack.add(trace as never, { step: 'initialize', name: 'tajoSesTrace', override: true });
  }
  return { client, limiter };
}
