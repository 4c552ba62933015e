// Reading SES audience state page by page. Each function reads one page and returns the
// token for the next, so the caller can checkpoint between pages (commit-then-checkpoint).
import {
  GetAccountCommand,
  GetConfigurationSetEventDestinationsCommand,
  GetContactCommand,
  GetContactListCommand,
  ListConfigurationSetsCommand,
  ListContactListsCommand,
  ListContactsCommand,
  ListEmailIdentitiesCommand,
  ListSuppressedDestinationsCommand,
  type SESv2Client,
} from '@aws-sdk/client-sesv2';
import { normalizeEmail, type SesContactRecord, type SesSuppressionRecord } from '../core/types.js';
import { TajoError } from '../core/errors.js';

export const PAGE_SIZE = 1000;

export interface SesTopic {
  name: string;
  defaultStatus: 'OPT_IN' | 'OPT_OUT';
}

export interface SesContactList {
  name: string;
  topics: SesTopic[];
}

/** The token we hold is no longer accepted: restart the list or the time window. */
export function isExpiredToken(err: unknown): boolean {
  const name = (err as { name?: string }).name ?? '';
  if (name === 'InvalidNextTokenException') return true;
  return name === 'BadRequestException' && /token/i.test((err as Error).message ?? '');
}

export async function readContactLists(ses: SESv2Client): Promise<SesContactList[]> {
  const out: SesContactList[] = [];
  let token: string | undefined;
  do {
    const page = await ses.send(new ListContactListsCommand({ PageSize: PAGE_SIZE, ...(token ? { NextToken: token } : {}) }));
    for (const l of page.ContactLists ?? []) {
      if (!l.ContactListName) continue;
      const full = await ses.send(new GetContactListCommand({ ContactListName: l.ContactListName }));
      out.push({
        name: l.ContactListName,
        topics: (full.Topics ?? [])
          .filter((t) => t.TopicName)
          .map((t) => ({ name: t.TopicName!, defaultStatus: t.DefaultSubscriptionStatus === 'OPT_IN' ? 'OPT_IN' : 'OPT_OUT' })),
      });
    }
    token = page.NextToken;
  } while (token);
  return out;
}

export interface ContactPage {
  records: SesContactRecord[];
  nextToken: string | undefined;
}

/** One page of a contact list (possibly empty while still carrying a NextToken). */
export async function readContactsPage(
  ses: SESv2Client,
  list: SesContactList,
  token: string | undefined,
  opts: { fetchAttributes?: boolean } = {},
): Promise<ContactPage> {
  const page = await ses.send(new ListContactsCommand({ ContactListName: list.name, PageSize: PAGE_SIZE, ...(token ? { NextToken: token } : {}) }));
  const records: SesContactRecord[] = [];
  for (const c of page.Contacts ?? []) {
    if (!c.EmailAddress) continue;
    const email = normalizeEmail(c.EmailAddress);
    const explicit = new Map((c.TopicPreferences ?? []).map((p) => [p.TopicName ?? '', p.SubscriptionStatus]));
    const defaults = new Map((c.TopicDefaultPreferences ?? []).map((p) => [p.TopicName ?? '', p.SubscriptionStatus]));
    const topics: Record<string, 'OPT_IN' | 'OPT_OUT'> = {};
    for (const t of list.topics) {
      // Effective preference: the contact's own choice, else the topic's default.
      const v = explicit.get(t.name) ?? defaults.get(t.name) ?? t.defaultStatus;
      topics[t.name] = v === 'OPT_IN' ? 'OPT_IN' : 'OPT_OUT';
    }
    let attributes: Record<string, unknown> = {};
    if (opts.fetchAttributes) {
      const full = await ses.send(new GetContactCommand({ ContactListName: list.name, EmailAddress: c.EmailAddress }));
      if (full.AttributesData) {
        try {
          const parsed: unknown = JSON.parse(full.AttributesData);
          if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) attributes = parsed as Record<string, unknown>;
        } catch {
          // AttributesData is free text in SES; only JSON objects can be mapped.
        }
      }
    }
    records.push({
      kind: 'ses_contact',
      key: `ses-contact:${list.name}:${email}`,
      list: list.name,
      email,
      unsubscribeAll: c.UnsubscribeAll === true,
      topics,
      attributes,
      ...(c.LastUpdatedTimestamp ? { lastUpdated: c.LastUpdatedTimestamp.toISOString() } : {}),
    });
  }
  return { records, nextToken: page.NextToken };
}

export interface SuppressionPage {
  records: SesSuppressionRecord[];
  nextToken: string | undefined;
}

export async function readSuppressionsPage(ses: SESv2Client, window: { start: Date; end: Date }, token: string | undefined): Promise<SuppressionPage> {
  const page = await ses.send(
    new ListSuppressedDestinationsCommand({ StartDate: window.start, EndDate: window.end, PageSize: PAGE_SIZE, ...(token ? { NextToken: token } : {}) }),
  );
  const records: SesSuppressionRecord[] = [];
  for (const s of page.SuppressedDestinationSummaries ?? []) {
    if (!s.EmailAddress) continue;
    const email = normalizeEmail(s.EmailAddress);
    records.push({
      kind: 'ses_suppression',
      key: `ses-suppression:${email}`,
      email,
      reason: s.Reason ?? 'UNKNOWN',
      lastUpdated: (s.LastUpdateTime ?? window.end).toISOString(),
    });
  }
  return { records, nextToken: page.NextToken };
}

/** One page as read, with the token it was read with: where a resumed run reads it again. */
export interface SesPage<R> {
  records: R[];
  nextToken: string | undefined;
  /** Undefined for the first page (of a list, or of a suppression window). */
  token: string | undefined;
}

export interface SesPaging<R> {
  /** Reads the page at `token` (the first page when undefined). */
  read: (token: string | undefined) => Promise<{ records: R[]; nextToken: string | undefined }>;
  /** A saved token to resume from; undefined starts at the first page. */
  from: string | undefined;
  /** SES no longer accepts the token held: paging starts over from the first page. */
  onRestart: () => void;
  /** Checked before each read: an aborted run ends the paging without reading further. */
  signal?: AbortSignal;
}

/**
 * The pages of a contact list or a suppression window, from a saved token on. SES paging
 * tokens expire (InvalidNextToken): the reading then starts over from the first page, which
 * costs a re-read only, as every write is an idempotent upsert. The next page is read only
 * when the caller asks for it, so the caller checkpoints between pages.
 */
export async function* sesPages<R>(paging: SesPaging<R>): AsyncGenerator<SesPage<R>> {
  let token = paging.from;
  for (;;) {
    if (paging.signal?.aborted) return;
    let page;
    try {
      page = await paging.read(token);
    } catch (err) {
      if (!isExpiredToken(err)) throw err;
      paging.onRestart();
      token = undefined;
      continue;
    }
    yield { records: page.records, nextToken: page.nextToken, token };
    if (!page.nextToken) return;
    token = page.nextToken;
  }
}

export interface SesAccountSnapshot {
  at: string;
  sandbox: boolean;
  sendingEnabled: boolean;
  enforcementStatus: string | null;
  quota: { max24HourSend: number | null; maxSendRate: number | null; sentLast24Hours: number | null };
  identities: Array<{ name: string; type: string | null; sendingEnabled: boolean; verificationStatus: string | null }>;
  configurationSets: Array<{ name: string; destinations: Array<{ name: string; enabled: boolean; topicArn: string | null; events: string[] }> }>;
}

export async function readAccount(ses: SESv2Client, now: Date): Promise<SesAccountSnapshot> {
  const acc = await ses.send(new GetAccountCommand({}));
  const identities: SesAccountSnapshot['identities'] = [];
  let token: string | undefined;
  do {
    const page = await ses.send(new ListEmailIdentitiesCommand({ PageSize: PAGE_SIZE, ...(token ? { NextToken: token } : {}) }));
    for (const i of page.EmailIdentities ?? []) {
      identities.push({
        name: i.IdentityName ?? '',
        type: i.IdentityType ?? null,
        sendingEnabled: i.SendingEnabled === true,
        verificationStatus: i.VerificationStatus ?? null,
      });
    }
    token = page.NextToken;
  } while (token);
  const configurationSets: SesAccountSnapshot['configurationSets'] = [];
  token = undefined;
  do {
    const page: { ConfigurationSets?: string[]; NextToken?: string } = await ses.send(
      new ListConfigurationSetsCommand({ PageSize: PAGE_SIZE, ...(token ? { NextToken: token } : {}) }),
    );
    for (const name of page.ConfigurationSets ?? []) {
      const d = await ses.send(new GetConfigurationSetEventDestinationsCommand({ ConfigurationSetName: name }));
      configurationSets.push({
        name,
        destinations: (d.EventDestinations ?? []).map((e) => ({
          name: e.Name ?? '',
          enabled: e.Enabled === true,
          topicArn: e.SnsDestination?.TopicArn ?? null,
          events: (e.MatchingEventTypes ?? []).map(String),
        })),
      });
    }
    token = page.NextToken;
  } while (token);
  return {
    at: now.toISOString(),
    sandbox: acc.ProductionAccessEnabled === false,
    sendingEnabled: acc.SendingEnabled === true,
    enforcementStatus: acc.EnforcementStatus ?? null,
    quota: {
      max24HourSend: acc.SendQuota?.Max24HourSend ?? null,
      maxSendRate: acc.SendQuota?.MaxSendRate ?? null,
      sentLast24Hours: acc.SendQuota?.SentLast24Hours ?? null,
    },
    identities,
    configurationSets,
  };
}

/** Turns SDK failures into errors an operator can act on. */
export function explainSesError(err: unknown, what: string): TajoError {
  const e = err as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const name = e.name ?? 'Error';
  const hints: Record<string, string> = {
    CredentialsProviderError: 'no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run on a role',
    AccessDeniedException:
      'the AWS identity lacks permission: allow ses:GetAccount, ses:ListContactLists, ses:GetContactList, ses:ListContacts, ses:GetContact, ses:ListSuppressedDestinations, ses:ListEmailIdentities, ses:ListConfigurationSets, ses:GetConfigurationSetEventDestinations',
    UnrecognizedClientException: 'the AWS access key is not valid in this region or account',
    InvalidClientTokenId: 'the AWS access key is not valid',
    TooManyRequestsException: 'SES throttled the request (1 request/s for these calls); it will be retried',
    NotFoundException: 'SES does not know this resource (was it deleted?)',
  };
  const retryable = name === 'TooManyRequestsException' || (e.$metadata?.httpStatusCode ?? 0) >= 500 || name === 'TimeoutError';
  return new TajoError(`ses_${name}`, `${what}: ${name}: ${e.message ?? ''}${hints[name] ? ` — ${hints[name]}` : ''}`, { retryable, cause: err });
}
