// Amazon EventBridge simulator for tests: the AWS JSON 1.1 protocol (`X-Amz-Target:
// AWSEvents.<Operation>`) that @aws-sdk/client-eventbridge speaks, for the reads `tajo-ses check`
// makes of the EventBridge intake's set-up: ListRules, ListTargetsByRule and
// DescribeApiDestination, over rules and API destinations seeded by the test. `deny` answers
// chosen operations with AccessDeniedException, as IAM would.

import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { listenOn } from '../listen.js';

const ACCOUNT = '123456789012';
const PAGE = 50;

export interface EventBridgeSimTarget {
  id: string;
  /** An API destination's ARN (apiDestinationArn), a queue's, a Lambda's... */
  arn: string;
  /** The target's dead-letter queue (an SQS queue ARN). */
  deadLetterArn?: string;
}

export interface EventBridgeSimRule {
  name: string;
  /** Default 'default'. */
  eventBusName?: string;
  /** An object is sent as its JSON text; absent: a scheduled rule (no pattern). */
  eventPattern?: object | string;
  state?: 'ENABLED' | 'DISABLED';
  targets?: EventBridgeSimTarget[];
}

export interface EventBridgeSimApiDestination {
  name: string;
  invocationEndpoint: string;
  /** Default POST. */
  httpMethod?: string;
  /** Default `<name>-connection`. */
  connectionName?: string;
}

export interface EventBridgeSimData {
  rules?: EventBridgeSimRule[];
  apiDestinations?: EventBridgeSimApiDestination[];
}

export interface EventBridgeSimOptions extends EventBridgeSimData {
  port?: number;
  host?: string;
  region?: string;
}

export interface EventBridgeSim {
  /** http://127.0.0.1:PORT */
  endpoint: string;
  region: string;
  /** Replaces every rule and API destination. */
  seed(data: EventBridgeSimData): void;
  apiDestinationArn(name: string): string;
  /** Operations answered AccessDeniedException from now on ('*': every one); [] allows all again. */
  deny(operations: string[]): void;
  /** Calls per operation. */
  calls(): Record<string, number>;
  close(): Promise<void>;
}

class EventsError extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

type Json = Record<string, unknown>;

export async function startEventBridgeSim(opts: EventBridgeSimOptions = {}): Promise<EventBridgeSim> {
  const region = opts.region ?? 'us-east-1';
  let rules: EventBridgeSimRule[] = [];
  let destinations: EventBridgeSimApiDestination[] = [];
  let denied = new Set<string>();
  const calls: Record<string, number> = {};
  const created = Math.floor(Date.now() / 1000);

  const busOf = (r: EventBridgeSimRule) => r.eventBusName ?? 'default';
  const busArg = (body: Json) => (typeof body['EventBusName'] === 'string' && body['EventBusName'] !== '' ? body['EventBusName'] : 'default');
  const ruleArn = (r: EventBridgeSimRule) =>
    busOf(r) === 'default' ? `arn:aws:events:${region}:${ACCOUNT}:rule/${r.name}` : `arn:aws:events:${region}:${ACCOUNT}:rule/${busOf(r)}/${r.name}`;
  // A fixed suffix per name: AWS appends an id to the ARN of an API destination.
  const apiDestinationArn = (name: string) => `arn:aws:events:${region}:${ACCOUNT}:api-destination/${name}/7f3c9e2a-5b1d-4e8f-9a6c-0d2e4f6a8b1c`;
  const page = <T>(all: T[], body: Json): { items: T[]; next: string | undefined } => {
    const from = Number(body['NextToken'] ?? 0) || 0;
    const limit = typeof body['Limit'] === 'number' ? body['Limit'] : PAGE;
    return { items: all.slice(from, from + limit), next: from + limit < all.length ? String(from + limit) : undefined };
  };
  const ruleNamed = (body: Json): EventBridgeSimRule => {
    const name = body['Rule'];
    const bus = busArg(body);
    const r = rules.find((x) => x.name === name && busOf(x) === bus);
    if (!r) throw new EventsError('ResourceNotFoundException', `Rule ${String(name)} does not exist on EventBus ${bus}.`);
    return r;
  };

  const handlers: Record<string, { resource: (body: Json) => string; run: (body: Json) => Json }> = {
    ListRules: {
      resource: () => `arn:aws:events:${region}:${ACCOUNT}:rule/*`,
      run: (body) => {
        const prefix = typeof body['NamePrefix'] === 'string' ? body['NamePrefix'] : '';
        const bus = busArg(body);
        const { items, next } = page(
          rules.filter((r) => busOf(r) === bus && r.name.startsWith(prefix)),
          body,
        );
        return {
          Rules: items.map((r) => ({
            Name: r.name,
            Arn: ruleArn(r),
            EventBusName: busOf(r),
            State: r.state ?? 'ENABLED',
            ...(r.eventPattern !== undefined ? { EventPattern: typeof r.eventPattern === 'string' ? r.eventPattern : JSON.stringify(r.eventPattern) } : {}),
          })),
          ...(next ? { NextToken: next } : {}),
        };
      },
    },
    ListTargetsByRule: {
      resource: (body) => `arn:aws:events:${region}:${ACCOUNT}:rule/${String(body['Rule'])}`,
      run: (body) => {
        const { items, next } = page(ruleNamed(body).targets ?? [], body);
        return {
          Targets: items.map((t) => ({ Id: t.id, Arn: t.arn, ...(t.deadLetterArn ? { DeadLetterConfig: { Arn: t.deadLetterArn } } : {}) })),
          ...(next ? { NextToken: next } : {}),
        };
      },
    },
    DescribeApiDestination: {
      resource: (body) => apiDestinationArn(String(body['Name'])),
      run: (body) => {
        const d = destinations.find((x) => x.name === body['Name']);
        if (!d)
          throw new EventsError(
            'ResourceNotFoundException',
            `Failed to describe the api-destination(s). An api-destination '${String(body['Name'])}' does not exist.`,
          );
        return {
          ApiDestinationArn: apiDestinationArn(d.name),
          Name: d.name,
          ApiDestinationState: 'ACTIVE',
          ConnectionArn: `arn:aws:events:${region}:${ACCOUNT}:connection/${d.connectionName ?? `${d.name}-connection`}/sim`,
          InvocationEndpoint: d.invocationEndpoint,
          HttpMethod: d.httpMethod ?? 'POST',
          InvocationRateLimitPerSecond: 300,
          CreationTime: created,
          LastModifiedTime: created,
        };
      },
    },
  };

  function reply(res: ServerResponse, status: number, json: Json): void {
    const text = JSON.stringify(json);
    res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': randomUUID(), 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const target = String(req.headers['x-amz-target'] ?? '');
    const op = target.startsWith('AWSEvents.') ? target.slice('AWSEvents.'.length) : '';
    try {
      const handler = handlers[op];
      if (req.method !== 'POST' || !handler) throw new EventsError('UnknownOperationException', `The simulator does not support ${JSON.stringify(target)}.`);
      calls[op] = (calls[op] ?? 0) + 1;
      let body: Json;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Json;
      } catch {
        throw new EventsError('ValidationException', 'The request body is not JSON.');
      }
      if (denied.has('*') || denied.has(op))
        throw new EventsError(
          'AccessDeniedException',
          `User: arn:aws:iam::${ACCOUNT}:user/sim is not authorized to perform: events:${op} on resource: ${handler.resource(body)} because no identity-based policy allows the events:${op} action`,
        );
      reply(res, 200, handler.run(body));
    } catch (err) {
      const e = err instanceof EventsError ? err : new EventsError('InternalException', String(err), 500);
      reply(res, e.status, { __type: e.type, message: e.message });
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  const { origin } = await listenOn(server, { port: opts.port, host: opts.host });
  const seed = (data: EventBridgeSimData) => {
    rules = (data.rules ?? []).map((r) => ({ ...r }));
    destinations = (data.apiDestinations ?? []).map((d) => ({ ...d }));
  };
  seed(opts);

  return {
    endpoint: origin,
    region,
    seed,
    apiDestinationArn,
    deny(operations) {
      denied = new Set(operations);
    },
    calls: () => ({ ...calls }),
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
