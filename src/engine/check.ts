// `tajo-ses check`: everything set-up needs, each with the fix when it fails.
import { ListContactListsCommand, ListSuppressedDestinationsCommand } from '@aws-sdk/client-sesv2';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { GetSubscriptionAttributesCommand, ListSubscriptionsByTopicCommand, SNSClient, type Subscription } from '@aws-sdk/client-sns';
import {
  DescribeApiDestinationCommand,
  EventBridgeClient,
  ListRulesCommand,
  ListTargetsByRuleCommand,
  type Rule,
  type Target,
} from '@aws-sdk/client-eventbridge';
import { createSqsClient } from './sqs.js';
import { awsCredentials, type SesClientOptions } from '../ses/client.js';
import type { SesConnectorConfig } from '../config/schema.js';
import type { Connector } from './connector.js';
import { readAccount, explainSesError, type SesAccountSnapshot } from '../ses/streams.js';
import { ensureAttributes } from './setup.js';
import { errorMessage } from '../core/errors.js';
import { BrevoError } from '../brevo/client.js';
import { SES_ATTRIBUTES } from '../core/brevo-model.js';

export interface CheckResult {
  name: string;
  ok: boolean;
  /** A warning does not fail the run. */
  warning?: boolean;
  detail: string;
  fix?: string;
}

export async function runChecks(c: Connector, opts: { fix?: boolean } = {}): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  const push = (r: CheckResult) => out.push(r);
  await checkSes(c, push);
  await checkSqs(c, push);
  await checkSns(c, push);
  await checkEventBridge(c, push);
  await checkBrevo(c, opts.fix === true, push);
  await checkStore(c, push);
  return out;
}

/** The SQS intake, when `sqs.queue_url` is set: the queue readable, its redrive policy, raw bodies accepted or not. */
export async function checkSqs(c: Connector, push: (r: CheckResult) => void, credentials?: SesClientOptions['credentials']): Promise<void> {
  const ses = c.config.connectors['amazon-ses'];
  if (!ses.sqs.queue_url) return;
  const client = createSqsClient(ses, credentials);
  try {
    const res = await client.send(new GetQueueAttributesCommand({ QueueUrl: ses.sqs.queue_url, AttributeNames: ['VisibilityTimeout', 'RedrivePolicy'] }));
    const a = res.Attributes ?? {};
    push({ name: 'sqs.queue', ok: true, detail: `${ses.sqs.queue_url} readable (visibility timeout ${a.VisibilityTimeout ?? '?'} s)` });
    push(
      a.RedrivePolicy
        ? {
            name: 'sqs.redrive_policy',
            ok: true,
            detail: `dead-letter queue ${String((JSON.parse(a.RedrivePolicy) as { deadLetterTargetArn?: string }).deadLetterTargetArn)}`,
          }
        : ses.sqs.poison === 'delete'
          ? {
              name: 'sqs.redrive_policy',
              ok: true,
              detail: 'no redrive policy; sqs.poison: delete records a message that can never be stored in failures, then deletes it',
            }
          : {
              name: 'sqs.redrive_policy',
              ok: true,
              warning: true,
              detail: 'the queue has no redrive policy: a message that can never be stored comes back until it expires',
              fix: 'give the queue a dead-letter queue (redrive policy, e.g. maxReceiveCount 5), or set sqs.poison: delete',
            },
    );
  } catch (err) {
    push({
      name: 'sqs.queue',
      ok: false,
      detail: `SQS GetQueueAttributes on ${ses.sqs.queue_url}: ${errorMessage(err)}`,
      fix: "check sqs.queue_url, and allow sqs:ReceiveMessage, sqs:DeleteMessage, sqs:ChangeMessageVisibility and sqs:GetQueueAttributes on it for the connector's AWS identity",
    });
  } finally {
    client.destroy();
  }
  if (ses.sqs.raw_message_delivery !== false) {
    push({
      name: 'sqs.raw_message_delivery',
      ok: true,
      warning: true,
      detail: `raw SES records are accepted (raw_message_delivery: ${String(ses.sqs.raw_message_delivery)}); they carry no signature, so the queue policy is their only authentication`,
      fix: 'leave raw message delivery off on the SNS subscription and set sqs.raw_message_delivery: false to accept signed envelopes only',
    });
  }
}

type Push = (r: CheckResult) => void;
type Credentials = SesClientOptions['credentials'];

/** The SNS webhook's path and the EventBridge intake's (src/server/app.ts). */
const SNS_WEBHOOK_PATH = '/webhooks/amazon-ses';
const EVENTBRIDGE_WEBHOOK_PATH = '/webhooks/amazon-ses/eventbridge';
/** Retries spanning less than this (SNS's default spans 60 s) lose what arrives during a deploy or a short outage. */
const MIN_RETRY_SPAN_S = 600;
/** The delivery policy the README suggests: 100 retries 20 s apart, about 33 minutes (SNS caps the total at 3,600 s). */
const SUGGESTED_DELIVERY_POLICY = '{"healthyRetryPolicy":{"numRetries":100,"minDelayTarget":20,"maxDelayTarget":20,"backoffFunction":"linear"}}';
const SNS_PERMISSIONS_NOTE = '(optional: check reads the subscriptions with it to warn about SNS dropping messages)';
const EVENTBRIDGE_PERMISSIONS = 'events:ListRules, events:ListTargetsByRule and events:DescribeApiDestination';

/** AccessDenied (EventBridge, IAM), AuthorizationError (SNS), or any 403. */
function isAccessDenied(err: unknown): boolean {
  const e = err as { name?: string; Code?: string; $metadata?: { httpStatusCode?: number } };
  return /^(AccessDenied|AuthorizationError)/.test(e?.name ?? e?.Code ?? '') || e?.$metadata?.httpStatusCode === 403;
}

function isNotFound(err: unknown): boolean {
  const e = err as { name?: string };
  return /^(NotFound|ResourceNotFound)/.test(e?.name ?? '');
}

/** An endpoint as it may be printed: no user:password (SNS allows basic auth in the URL), no query string. */
function printableEndpoint(endpoint: string): string {
  try {
    const u = new URL(endpoint);
    return `${u.protocol}//${u.host}${u.pathname}${u.search ? '?…' : ''}`;
  } catch {
    return '(not a URL)';
  }
}

/** `base`, then `base.2`, `base.3`...: one result per subscription keeps every name unique. */
function numbered(): (base: string) => string {
  const seen = new Map<string, number>();
  return (base) => {
    const n = (seen.get(base) ?? 0) + 1;
    seen.set(base, n);
    return n === 1 ? base : `${base}.${n}`;
  };
}

function jsonObject(text: string | undefined): Record<string, unknown> | undefined {
  if (!text) return undefined;
  try {
    const v = JSON.parse(text) as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * How long an HTTP/S delivery policy keeps retrying: the immediate retries, those at
 * minDelayTarget, the backoff phase climbing from minDelayTarget to maxDelayTarget (counted as
 * linear), and those at maxDelayTarget. No policy: SNS's default, 3 retries 20 s apart.
 */
export function retrySpan(policyJson: string | undefined): { retries: number; seconds: number } {
  const h = (jsonObject(policyJson)?.['healthyRetryPolicy'] ?? {}) as Record<string, unknown>;
  const n = (k: string, def: number) => (typeof h[k] === 'number' && Number.isFinite(h[k]) && h[k] >= 0 ? h[k] : def);
  const retries = n('numRetries', 3);
  const min = n('minDelayTarget', 20);
  const max = Math.max(min, n('maxDelayTarget', 20));
  const atMin = n('numMinDelayRetries', 0);
  const atMax = n('numMaxDelayRetries', 0);
  const backoff = Math.max(0, retries - n('numNoDelayRetries', 0) - atMin - atMax);
  const climb = backoff > 0 ? backoff * min + ((max - min) * (backoff + 1)) / 2 : 0;
  return { retries, seconds: atMin * min + atMax * max + climb };
}

export function createSnsClient(cfg: SesConnectorConfig, region: string, credentials?: Credentials): SNSClient {
  const creds = awsCredentials(cfg, credentials);
  return new SNSClient({ region, ...(cfg.sns.endpoint ? { endpoint: cfg.sns.endpoint } : {}), ...(creds ? { credentials: creds } : {}), maxAttempts: 3 });
}

export function createEventBridgeClient(cfg: SesConnectorConfig, credentials?: Credentials): EventBridgeClient {
  const creds = awsCredentials(cfg, credentials);
  return new EventBridgeClient({
    region: cfg.region,
    ...(cfg.eventbridge.endpoint ? { endpoint: cfg.eventbridge.endpoint } : {}),
    ...(creds ? { credentials: creds } : {}),
    maxAttempts: 3,
  });
}

/** The SQS intake queue's account and name, from sqs.queue_url (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME). */
function queueIdOf(queueUrl: string): string | undefined {
  const m = /\/(\d{12})\/([^/?#]+)\/?$/.exec(queueUrl.split('?')[0] ?? '');
  return m ? `:${m[1]}:${m[2]}` : undefined;
}

/**
 * The SNS subscriptions that deliver to the connector, for each topic of sns.topic_arns: an
 * HTTP/S subscription with SNS's default delivery policy (3 retries, 20 s apart) and no
 * dead-letter queue loses what arrives while the webhook is down (a warning, with the fix); one
 * with raw message delivery on is refused by the webhook (a failure). The subscription of the
 * SQS intake's queue must match sqs.raw_message_delivery. Reading needs
 * sns:ListSubscriptionsByTopic and sns:GetSubscriptionAttributes: without them, a warning.
 */
/**
 * SES read from an endpoint of its own (a simulator, as `init --local` writes) with no
 * endpoint for `service`: its real AWS counterpart would be asked with the simulator's
 * keys. Says so instead (ok), with the setting that makes the check run.
 */
function skippedBesideSimulator(ses: SesConnectorConfig, service: 'sns' | 'eventbridge', push: Push): boolean {
  if (!ses.endpoint || ses[service].endpoint) return false;
  push({
    name: service === 'sns' ? 'sns.subscriptions' : 'eventbridge.rule',
    ok: true,
    detail: `not checked: SES is read from ${ses.endpoint} and connectors.amazon-ses.${service}.endpoint is not set (set it to check ${service === 'sns' ? 'the subscriptions' : 'the rule'} there)`,
  });
  return true;
}

export async function checkSns(c: Connector, push: Push, credentials?: Credentials): Promise<void> {
  const ses = c.config.connectors['amazon-ses'];
  if (skippedBesideSimulator(ses, 'sns', push)) return;
  const name = numbered();
  const clients = new Map<string, SNSClient>();
  const clientFor = (topic: string): SNSClient => {
    // A topic is read in its own region (the ARN's), which may not be the SES region.
    const region = topic.split(':')[3] || ses.region;
    let cl = clients.get(region);
    if (!cl) clients.set(region, (cl = createSnsClient(ses, region, credentials)));
    return cl;
  };
  try {
    for (const topic of ses.sns.topic_arns) await checkTopic(ses, topic, clientFor(topic), name, push);
  } finally {
    for (const cl of clients.values()) cl.destroy();
  }
}

async function checkTopic(ses: SesConnectorConfig, topic: string, client: SNSClient, name: (base: string) => string, push: Push): Promise<void> {
  const subs: Subscription[] = [];
  try {
    let token: string | undefined;
    for (let page = 0; page < 20; page++) {
      const res = await client.send(new ListSubscriptionsByTopicCommand({ TopicArn: topic, ...(token ? { NextToken: token } : {}) }));
      subs.push(...(res.Subscriptions ?? []));
      token = res.NextToken;
      if (!token) break;
    }
  } catch (err) {
    push(
      isAccessDenied(err)
        ? {
            name: name('sns.subscriptions'),
            ok: true,
            warning: true,
            detail: `cannot read the subscriptions of ${topic}: ${errorMessage(err)}`,
            fix: `allow sns:ListSubscriptionsByTopic on ${topic} and sns:GetSubscriptionAttributes for the connector's AWS identity ${SNS_PERMISSIONS_NOTE}`,
          }
        : isNotFound(err)
          ? {
              name: name('sns.subscriptions'),
              ok: false,
              detail: `the topic ${topic} does not exist (SNS ListSubscriptionsByTopic: ${errorMessage(err)})`,
              fix: 'create the topic and point the SES event destination at it, or correct connectors.amazon-ses.sns.topic_arns',
            }
          : {
              name: name('sns.subscriptions'),
              ok: true,
              warning: true,
              detail: `SNS ListSubscriptionsByTopic on ${topic}: ${errorMessage(err)}`,
              fix: "check the network path to SNS in the topic's region (or connectors.amazon-ses.sns.endpoint)",
            },
    );
    return;
  }
  const web = subs.filter((s) => s.Protocol === 'http' || s.Protocol === 'https');
  // With several, the ones on the connector's webhook path are the connector's.
  const ours = web.filter((s) => {
    try {
      return new URL(s.Endpoint ?? '').pathname.replace(/\/+$/, '') === SNS_WEBHOOK_PATH;
    } catch {
      return false;
    }
  });
  const hooks = ours.length ? ours : web;
  const queueId = ses.sqs.queue_url ? queueIdOf(ses.sqs.queue_url) : undefined;
  const queues = queueId ? subs.filter((s) => s.Protocol === 'sqs' && s.Endpoint?.endsWith(queueId)) : [];
  if (hooks.length === 0 && queues.length === 0) {
    push({
      name: name('sns.subscriptions'),
      ok: true,
      warning: true,
      detail: `${topic} has no HTTP/S subscription${ses.sqs.queue_url ? " nor one of sqs.queue_url's queue" : ''}: what it publishes reaches no intake of the connector`,
      fix: `subscribe https://YOUR-HOST${SNS_WEBHOOK_PATH} to the topic (protocol https), or subscribe the SQS intake's queue (sqs.queue_url)`,
    });
    return;
  }
  for (const sub of hooks) await checkWebhookSubscription(ses, sub, client, name, push);
  for (const sub of queues) await checkQueueSubscription(ses, sub, client, name, push);
}

async function readSubscription(sub: Subscription, client: SNSClient, resultName: string, push: Push): Promise<Record<string, string> | undefined> {
  try {
    const res = await client.send(new GetSubscriptionAttributesCommand({ SubscriptionArn: sub.SubscriptionArn }));
    return res.Attributes ?? {};
  } catch (err) {
    push({
      name: resultName,
      ok: true,
      warning: true,
      detail: `cannot read the subscription ${sub.SubscriptionArn ?? '?'} (${printableEndpoint(sub.Endpoint ?? '')}): ${errorMessage(err)}`,
      fix: isAccessDenied(err)
        ? `allow sns:GetSubscriptionAttributes on ${sub.TopicArn ?? 'the topic'} for the connector's AWS identity ${SNS_PERMISSIONS_NOTE}`
        : "check the network path to SNS in the topic's region (or connectors.amazon-ses.sns.endpoint)",
    });
    return undefined;
  }
}

async function checkWebhookSubscription(
  ses: SesConnectorConfig,
  sub: Subscription,
  client: SNSClient,
  name: (base: string) => string,
  push: Push,
): Promise<void> {
  const policyName = name('sns.delivery_policy');
  // A subscription still pending confirmation has no ARN to read yet.
  if (!sub.SubscriptionArn?.startsWith('arn:')) {
    push({
      name: policyName,
      ok: true,
      warning: true,
      detail: `the subscription of ${printableEndpoint(sub.Endpoint ?? '')} to ${sub.TopicArn ?? '?'} is not confirmed (${sub.SubscriptionArn ?? '?'})`,
      fix: 'run serve where SNS reaches it (auto_confirm_subscriptions: true confirms it), or confirm it by hand, then run check again',
    });
    return;
  }
  const attrs = await readSubscription(sub, client, policyName, push);
  if (!attrs) return;
  const arn = sub.SubscriptionArn;
  const where = `${printableEndpoint(sub.Endpoint ?? '')} on ${sub.TopicArn ?? '?'}`;
  if (attrs['RawMessageDelivery'] === 'true')
    push({
      name: name('sns.raw_delivery'),
      ok: false,
      detail: `${where} has raw message delivery on: the webhook refuses every message (400 raw_message_delivery_enabled), and SNS drops them`,
      fix: `aws sns set-subscription-attributes --subscription-arn ${arn} --attribute-name RawMessageDelivery --attribute-value false`,
    });
  const set = attrs['DeliveryPolicy'];
  const span = retrySpan(set ?? attrs['EffectiveDeliveryPolicy']);
  const dlq = jsonObject(attrs['RedrivePolicy'])?.['deadLetterTargetArn'];
  const queueId = ses.sqs.queue_url ? queueIdOf(ses.sqs.queue_url) : undefined;
  const drained = typeof dlq === 'string' && queueId !== undefined && dlq.endsWith(queueId);
  const spanText = `${span.retries} retries over about ${Math.round(span.seconds / 60)} min`;
  const long = span.seconds >= MIN_RETRY_SPAN_S;
  if (typeof dlq === 'string' && long) {
    push({
      name: policyName,
      ok: true,
      detail: `${where}: ${spanText}, dead-letter queue ${dlq}${drained ? ' (the SQS intake drains it)' : ''}`,
    });
    return;
  }
  const problems: string[] = [];
  const fixes: string[] = [];
  if (!long) {
    problems.push(
      set
        ? `its delivery policy retries ${span.retries} times over about ${Math.round(span.seconds)} s`
        : `it has SNS's default delivery policy (${span.retries} retries over about ${Math.round(span.seconds)} s)`,
    );
    fixes.push(
      `aws sns set-subscription-attributes --subscription-arn ${arn} --attribute-name DeliveryPolicy --attribute-value '${SUGGESTED_DELIVERY_POLICY}'`,
    );
  }
  if (typeof dlq !== 'string') {
    problems.push('it has no dead-letter queue, so what SNS gives up on is discarded');
    fixes.push(
      `attach an SQS dead-letter queue: aws sns set-subscription-attributes --subscription-arn ${arn} --attribute-name RedrivePolicy --attribute-value '{"deadLetterTargetArn":"arn:aws:sqs:REGION:ACCOUNT:ses-webhook-dlq"}' (its queue policy must let sns.amazonaws.com sqs:SendMessage), then set sqs.queue_url to that queue (sqs.raw_message_delivery: false) so serve drains it`,
    );
  }
  push({
    name: policyName,
    ok: true,
    warning: true,
    detail: `${where}: ${problems.join('; ')}: messages that arrive while the webhook is down are lost`,
    fix: fixes.join('; then '),
  });
}

async function checkQueueSubscription(
  ses: SesConnectorConfig,
  sub: Subscription,
  client: SNSClient,
  name: (base: string) => string,
  push: Push,
): Promise<void> {
  const resultName = name('sns.sqs_subscription');
  const attrs = await readSubscription(sub, client, resultName, push);
  if (!attrs) return;
  const raw = attrs['RawMessageDelivery'] === 'true';
  const where = `the subscription of ${sub.Endpoint ?? '?'} to ${sub.TopicArn ?? '?'}`;
  push(
    raw && ses.sqs.raw_message_delivery === false
      ? {
          name: resultName,
          ok: false,
          detail: `${where} has raw message delivery on, but sqs.raw_message_delivery is false: every message is refused (raw_message_refused)`,
          fix: `aws sns set-subscription-attributes --subscription-arn ${sub.SubscriptionArn ?? 'SUBSCRIPTION_ARN'} --attribute-name RawMessageDelivery --attribute-value false (or set sqs.raw_message_delivery: auto)`,
        }
      : { name: resultName, ok: true, detail: `${where} delivers ${raw ? 'raw SES records' : 'signed SNS envelopes'}` },
  );
}

/**
 * The EventBridge intake (when eventbridge.secret is set): a rule on the default event bus whose
 * pattern matches `source: aws.ses`, targeting an API destination whose endpoint is the
 * connector's /webhooks/amazon-ses/eventbridge. Missing: a warning with the steps; unreadable
 * (events:ListRules, events:ListTargetsByRule, events:DescribeApiDestination denied): a warning.
 */
export async function checkEventBridge(c: Connector, push: Push, credentials?: Credentials): Promise<void> {
  const ses = c.config.connectors['amazon-ses'];
  if (!ses.eventbridge.secret) return;
  if (skippedBesideSimulator(ses, 'eventbridge', push)) return;
  const client = createEventBridgeClient(ses, credentials);
  let step = 'ListRules';
  try {
    const rules: Rule[] = [];
    let token: string | undefined;
    for (let page = 0; page < 20; page++) {
      const res = await client.send(new ListRulesCommand({ EventBusName: 'default', Limit: 100, ...(token ? { NextToken: token } : {}) }));
      rules.push(...(res.Rules ?? []));
      token = res.NextToken;
      if (!token) break;
    }
    const sesRules = rules.filter((r) => {
      const source = jsonObject(r.EventPattern)?.['source'];
      return source === 'aws.ses' || (Array.isArray(source) && source.includes('aws.ses'));
    });
    const found: string[] = [];
    for (const rule of sesRules) {
      step = 'ListTargetsByRule';
      const targets: Target[] = (await client.send(new ListTargetsByRuleCommand({ Rule: rule.Name, EventBusName: 'default' }))).Targets ?? [];
      for (const t of targets) {
        const m = /:api-destination\/([^/]+)/.exec(t.Arn ?? '');
        if (!m) continue;
        step = 'DescribeApiDestination';
        const d = await client.send(new DescribeApiDestinationCommand({ Name: m[1] }));
        let path = '';
        try {
          path = new URL(d.InvocationEndpoint ?? '').pathname.replace(/\/+$/, '');
        } catch {
          // not a URL: not ours
        }
        const endpoint = printableEndpoint(d.InvocationEndpoint ?? '');
        if (path !== EVENTBRIDGE_WEBHOOK_PATH) {
          found.push(`${rule.Name ?? '?'} -> ${endpoint}`);
          continue;
        }
        const what = `rule ${rule.Name ?? '?'} sends source aws.ses events to the API destination ${d.Name ?? m[1]} (${d.HttpMethod ?? '?'} ${endpoint})`;
        if (rule.State !== 'ENABLED' || (d.HttpMethod ?? 'POST') !== 'POST')
          push({
            name: 'eventbridge.rule',
            ok: true,
            warning: true,
            detail: `${what}, but ${rule.State !== 'ENABLED' ? `the rule is ${rule.State ?? 'not enabled'}` : 'the method is not POST'}`,
            fix:
              rule.State !== 'ENABLED'
                ? `enable the rule: aws events enable-rule --name ${rule.Name ?? 'RULE'}`
                : "set the API destination's HTTP method to POST",
          });
        else if (!t.DeadLetterConfig?.Arn)
          push({
            name: 'eventbridge.rule',
            ok: true,
            warning: true,
            detail: `${what}; the target has no dead-letter queue: events EventBridge gives up on after 24 hours of retries are lost`,
            fix: "give the rule's target a dead-letter queue (an SQS queue, in the target's settings: Dead-letter queue)",
          });
        else push({ name: 'eventbridge.rule', ok: true, detail: `${what}, dead-letter queue ${t.DeadLetterConfig.Arn}` });
        return;
      }
    }
    push({
      name: 'eventbridge.rule',
      ok: true,
      warning: true,
      detail: sesRules.length
        ? `no rule matching source aws.ses on the default event bus targets an API destination for ${EVENTBRIDGE_WEBHOOK_PATH}${found.length ? ` (found: ${found.join(', ')})` : ''}`
        : `no rule on the default event bus (${ses.region}) matches source aws.ses: SES events sent to EventBridge reach no intake of the connector`,
      fix:
        `in EventBridge (${ses.region}): create a connection with API key authorization (key ${ses.eventbridge.header_name}, value eventbridge.secret), ` +
        `an API destination on it (POST https://YOUR-HOST${EVENTBRIDGE_WEBHOOK_PATH}), and a rule on the default event bus with the pattern {"source": ["aws.ses"]} targeting it (with a dead-letter queue); ` +
        'then in SES add an Amazon EventBridge event destination to the configuration set',
    });
  } catch (err) {
    push({
      name: 'eventbridge.rule',
      ok: true,
      warning: true,
      detail: `cannot read the EventBridge set-up (${step}): ${errorMessage(err)}`,
      fix: isAccessDenied(err)
        ? `allow ${EVENTBRIDGE_PERMISSIONS} for the connector's AWS identity (optional: check reads the rule and its API destination with them)`
        : 'check the network path to EventBridge (or connectors.amazon-ses.eventbridge.endpoint)',
    });
  } finally {
    client.destroy();
  }
}

async function checkSes(c: Connector, push: Push): Promise<void> {
  const ses = c.config.connectors['amazon-ses'];
  let account: SesAccountSnapshot | undefined;
  try {
    account = await readAccount(c.ses().client, new Date());
    await c.store.setState('ses:account', JSON.stringify(account), Date.now());
    push({ name: 'ses.credentials', ok: true, detail: `SES ${ses.region} answered GetAccount, ListEmailIdentities and ListConfigurationSets` });
  } catch (err) {
    const e = explainSesError(err, 'SES GetAccount');
    push({
      name: 'ses.credentials',
      ok: false,
      detail: e.message,
      fix: 'give the connector AWS credentials (AWS_PROFILE, environment keys, or an instance/container role; credentials.role_arn to assume a role) with the SES read permissions listed in the README',
    });
  }
  if (!account) return;
  push(
    account.sendingEnabled
      ? { name: 'ses.sending', ok: true, detail: `sending enabled, enforcement ${account.enforcementStatus ?? 'unknown'}` }
      : {
          name: 'ses.sending',
          ok: false,
          detail: `sending is paused for the account (enforcement ${account.enforcementStatus ?? 'unknown'})`,
          fix: 'see the SES console (Reputation metrics / Account dashboard) for why sending was paused',
        },
  );
  if (account.sandbox)
    push({
      name: 'ses.sandbox',
      ok: true,
      warning: true,
      detail: 'the account is in the SES sandbox: mail goes to verified addresses only',
      fix: 'request production access in the SES console',
    });
  checkEventPublishing(account, ses.sns.topic_arns, push);
  for (const [name, cmd, what] of [
    ['ses.contact_lists', new ListContactListsCommand({ PageSize: 1 }), 'ListContactLists'],
    ['ses.suppressions', new ListSuppressedDestinationsCommand({ PageSize: 1 }), 'ListSuppressedDestinations'],
  ] as const) {
    try {
      await c.ses().client.send(cmd as never);
      push({ name, ok: true, detail: `${what} allowed` });
    } catch (err) {
      push({ name, ok: false, detail: explainSesError(err, what).message, fix: `allow ses:${what} for the connector's AWS identity` });
    }
  }
}

/** Does a configuration set publish events (bounces and complaints above all) to a topic the connector accepts? */
function checkEventPublishing(account: SesAccountSnapshot, topicArns: string[], push: Push): void {
  const publishing = account.configurationSets.flatMap((cs) =>
    cs.destinations.filter((d) => d.enabled && d.topicArn && topicArns.includes(d.topicArn)).map((d) => ({ cs: cs.name, d })),
  );
  if (publishing.length === 0) {
    const elsewhere = account.configurationSets.flatMap((cs) => cs.destinations.filter((d) => d.topicArn).map((d) => d.topicArn!));
    push({
      name: 'ses.event_publishing',
      ok: false,
      detail:
        topicArns.length === 0
          ? 'sns.topic_arns is empty: every notification would be refused'
          : `no enabled configuration set event destination publishes to ${topicArns.join(', ')}${elsewhere.length ? ` (found topics: ${[...new Set(elsewhere)].join(', ')})` : ''}`,
      fix: 'in SES, add an SNS event destination to your configuration set for the topic, and list that topic ARN in connectors.amazon-ses.sns.topic_arns',
    });
    return;
  }
  const events = [...new Set(publishing.flatMap((p) => p.d.events))].sort();
  push({
    name: 'ses.event_publishing',
    ok: true,
    detail: `${publishing.map((p) => `${p.cs}/${p.d.name}`).join(', ')} publish ${events.join(', ')} to an allowed topic`,
  });
  const missing = ['BOUNCE', 'COMPLAINT'].filter((t) => !events.includes(t));
  if (missing.length)
    push({
      name: 'ses.event_types',
      ok: true,
      warning: true,
      detail: `no configuration set publishes ${missing.join(', ')} to an allowed topic`,
      fix: `add ${missing.join(' and ')} to the event destination's event types`,
    });
}

async function checkBrevo(c: Connector, fix: boolean, push: Push): Promise<void> {
  if (c.config.brevo.api_key === '') {
    push({
      name: 'brevo.api_key',
      ok: false,
      detail: 'brevo.api_key is empty',
      fix: 'set brevo.api_key (usually ${BREVO_API_KEY}) to a Brevo v3 API key (Brevo > SMTP & API > API keys)',
    });
    return;
  }
  try {
    await c.client.getAccount();
    push({ name: 'brevo.api_key', ok: true, detail: `Brevo answered at ${c.config.brevo.base_url}` });
  } catch (err) {
    const code = err instanceof BrevoError ? err.code : 'error';
    push({
      name: 'brevo.api_key',
      ok: false,
      detail: errorMessage(err),
      fix:
        code === 'unauthorized'
          ? 'set brevo.api_key (BREVO_API_KEY) to a valid Brevo v3 API key (Brevo > SMTP & API > API keys)'
          : 'check brevo.base_url and the network path to Brevo',
    });
    return;
  }
  await checkBrevoAttributes(c, fix, push);
  await checkBrevoLists(c, fix, push);
}

async function checkBrevoAttributes(c: Connector, fix: boolean, push: Push): Promise<void> {
  const ses = c.config.connectors['amazon-ses'];
  try {
    const rep = await ensureAttributes(c.client, { create: fix, mapped: Object.values(ses.field_mapping) });
    const missing = Object.keys(SES_ATTRIBUTES).length - rep.present.length - rep.created.length - rep.mismatched.length;
    if (rep.mismatched.length)
      push({
        name: 'brevo.attributes',
        ok: false,
        detail: rep.mismatched.map((m) => `${m.name} is ${m.found}, expected ${m.expected}`).join('; '),
        fix: 'delete these attributes in Brevo (Contacts > Settings > Contact attributes), then run tajo-ses check --fix',
      });
    else if (missing > 0)
      push({
        name: 'brevo.attributes',
        ok: false,
        detail: `${missing} SES_* attribute(s) missing`,
        fix: 'run tajo-ses check --fix (serve also creates them at start)',
      });
    else
      push({
        name: 'brevo.attributes',
        ok: true,
        detail: rep.created.length ? `created ${rep.created.join(', ')}` : 'all SES_* attributes present with the right types',
      });
    if (rep.missingMapped.length)
      push({
        name: 'brevo.field_mapping',
        ok: false,
        detail: `field_mapping targets missing in Brevo: ${rep.missingMapped.join(', ')}`,
        fix: 'create them in Brevo or fix connectors.amazon-ses.field_mapping',
      });
  } catch (err) {
    push({ name: 'brevo.attributes', ok: false, detail: errorMessage(err), fix: 'the API key needs access to contact attributes' });
  }
}

async function checkBrevoLists(c: Connector, fix: boolean, push: Push): Promise<void> {
  const folderName = c.config.connectors['amazon-ses'].lists.folder;
  try {
    const lists = await c.store.getState('ses:contact_lists');
    if (fix && lists) await c.lists.ensureAll(JSON.parse(lists));
    const { data } = await c.client.listFolders(50, 0);
    const folder = (data?.folders ?? []).find((f) => f.name === folderName);
    push(
      folder
        ? { name: 'brevo.lists', ok: true, detail: `folder "${folderName}" exists` }
        : {
            name: 'brevo.lists',
            ok: true,
            warning: true,
            detail: `folder "${folderName}" does not exist yet`,
            fix: 'tajo-ses backfill creates it with one list per SES contact list and topic',
          },
    );
  } catch (err) {
    push({ name: 'brevo.lists', ok: false, detail: errorMessage(err), fix: 'the API key needs access to contact lists' });
  }
}

async function checkStore(c: Connector, push: Push): Promise<void> {
  try {
    await c.store.ping();
    push({ name: 'store', ok: true, detail: `${c.store.kind} store reachable` });
  } catch (err) {
    push({ name: 'store', ok: false, detail: errorMessage(err), fix: 'check store.url' });
  }
}
