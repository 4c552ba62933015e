// `tajo-ses check`: everything set-up needs, each with the fix when it fails.
import { ListContactListsCommand, ListSuppressedDestinationsCommand } from '@aws-sdk/client-sesv2';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { createSqsClient } from './sqs.js';
import type { SesClientOptions } from '../ses/client.js';
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
