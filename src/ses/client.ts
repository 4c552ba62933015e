// The SES v2 client: the AWS SDK with its default credential chain (environment, shared
// config and SSO profiles, container and instance roles), an optional role to assume, and
// one limiter shared by every control-plane call, applied to each attempt the SDK makes
// (its adaptive retries sit above the limiter, so a retry also waits for its turn).
import { SESv2Client, type SESv2ClientConfig } from '@aws-sdk/client-sesv2';
import type { FinalizeRequestMiddleware } from '@smithy/types';
import { fromIni, fromTemporaryCredentials } from '@aws-sdk/credential-providers';
import type { SesConnectorConfig } from '../config/schema.js';

/** Spaces requests at `rps` per second; FIFO so a long backfill cannot starve a `check`. */
export class RateLimiter {
  private nextAt = 0;
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

  async take(): Promise<void> {
    const now = this.now();
    const at = Math.max(now, this.nextAt);
    this.nextAt = at + this.intervalMs;
    this.calls++;
    if (at > now) await this.sleep(at - now);
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
  return { client, limiter };
}
