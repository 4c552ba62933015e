// SES v2 operations as the AWS SDK v3 (@aws-sdk/client-sesv2) serializes them: paths,
// methods and member locations come from the SDK's operation schemas. Response
// timestamps are epoch seconds (REST-JSON body default); query timestamps arrive as
// ISO 8601 date-time strings (REST query default).

import type { ContactListState, SesState } from './model.js';
import { prefCode, prefStatus } from './model.js';
import type { TokenRegistry } from './paging.js';

export class SesApiError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

const badRequest = (message: string) => new SesApiError(400, 'BadRequestException', message);
const notFound = (message: string) => new SesApiError(404, 'NotFoundException', message);

export interface OperationRequest {
  params: Record<string, string>;
  query: URLSearchParams;
  body: Record<string, unknown>;
}

export interface OperationContext {
  state: SesState;
  tokens: TokenRegistry;
  now: () => number;
}

export interface Operation {
  name: string;
  method: 'GET' | 'POST';
  /** `{Label}` segments match one URL-encoded path segment. */
  path: string;
  handle(ctx: OperationContext, req: OperationRequest): unknown;
}

const epochSeconds = (ms: number): number => ms / 1000;

function pageSize(raw: unknown, fallback: number, max: number): number {
  if (raw === undefined || raw === null || raw === '') return fallback;
  const n = typeof raw === 'number' ? raw : Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > max) {
    throw badRequest(`PageSize must be an integer between 1 and ${max}, got ${String(raw)}.`);
  }
  return n;
}

function optionalString(raw: unknown, name: string): string | undefined {
  if (raw === undefined || raw === null || raw === '') return undefined;
  if (typeof raw !== 'string') throw badRequest(`${name} must be a string.`);
  return raw;
}

/**
 * Resumes a paged listing. Only ListSuppressedDestinations models
 * InvalidNextTokenException; every other SESv2 list operation can only throw
 * BadRequestException for a bad token, so that is what they get.
 */
function resume(ctx: OperationContext, raw: unknown, scope: string, tokenError: 'InvalidNextTokenException' | 'BadRequestException'): number {
  const token = optionalString(raw, 'NextToken');
  if (token === undefined) return 0;
  const r = ctx.tokens.resume(token, scope);
  if ('invalid' in r) throw new SesApiError(400, tokenError, r.invalid);
  return r.offset;
}

/** Offset paging over a small, fully materialized collection. */
function page<T>(ctx: OperationContext, items: T[], scope: string, rawToken: unknown, rawSize: unknown, max: number): { items: T[]; nextToken?: string } {
  const start = resume(ctx, rawToken, scope, 'BadRequestException');
  const size = pageSize(rawSize, max, max);
  const end = Math.min(items.length, start + size);
  const out: { items: T[]; nextToken?: string } = { items: items.slice(start, end) };
  if (end < items.length) out.nextToken = ctx.tokens.issue(scope, end);
  return out;
}

function listOrThrow(ctx: OperationContext, name: string | undefined): ContactListState {
  const list = name === undefined ? undefined : ctx.state.lists.get(name);
  if (!list) throw notFound(`List with name ${name ?? ''} does not exist.`);
  return list;
}

function topicDefaults(list: ContactListState): Array<{ TopicName: string; SubscriptionStatus: string }> {
  return list.topics.map((t) => ({ TopicName: t.name, SubscriptionStatus: t.defaultSubscriptionStatus }));
}

function explicitPreferences(list: ContactListState, i: number): Array<{ TopicName: string; SubscriptionStatus: string }> {
  const out: Array<{ TopicName: string; SubscriptionStatus: string }> = [];
  list.topics.forEach((t, k) => {
    const s = prefStatus(list.pref(k, i));
    if (s) out.push({ TopicName: t.name, SubscriptionStatus: s });
  });
  return out;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parseStatus(raw: unknown, name: string): 'OPT_IN' | 'OPT_OUT' {
  if (raw === 'OPT_IN' || raw === 'OPT_OUT') return raw;
  throw badRequest(`${name} must be OPT_IN or OPT_OUT, got ${String(raw)}.`);
}

/** Query timestamps: the SDK sends ISO 8601; epoch seconds are accepted too for hand-written calls. */
function parseQueryDate(raw: string | null, name: string): number | undefined {
  if (raw === null || raw === '') return undefined;
  const ms = /^\d+(\.\d+)?$/.test(raw) ? Number(raw) * 1000 : Date.parse(raw);
  if (!Number.isFinite(ms)) throw badRequest(`${name} is not a valid timestamp: ${raw}.`);
  return ms;
}

const getAccount: Operation = {
  name: 'GetAccount',
  method: 'GET',
  path: '/v2/email/account',
  handle: (ctx) => {
    const a = ctx.state.account;
    return {
      DedicatedIpAutoWarmupEnabled: a.dedicatedIpAutoWarmupEnabled,
      EnforcementStatus: a.enforcementStatus,
      ProductionAccessEnabled: a.productionAccessEnabled,
      SendQuota: { Max24HourSend: a.max24HourSend, MaxSendRate: a.maxSendRate, SentLast24Hours: a.sentLast24Hours },
      SendingEnabled: a.sendingEnabled,
      SuppressionAttributes: { SuppressedReasons: [...a.suppressedReasons] },
      Details: {
        MailType: 'MARKETING',
        WebsiteURL: 'https://example.com',
        ContactLanguage: 'EN',
        UseCaseDescription: 'Simulated account',
        ReviewDetails: { Status: a.productionAccessEnabled ? 'GRANTED' : 'PENDING', CaseId: 'sim-case-1' },
      },
    };
  },
};

function listEmailIdentities(ctx: OperationContext, rawToken: unknown, rawSize: unknown): unknown {
  const all = [...ctx.state.identities.values()].map((i) => ({
    IdentityType: i.type,
    IdentityName: i.name,
    SendingEnabled: i.sendingEnabled,
    VerificationStatus: i.verificationStatus,
  }));
  const p = page(ctx, all, 'ListEmailIdentities', rawToken, rawSize, 1000);
  return { EmailIdentities: p.items, NextToken: p.nextToken };
}

function listConfigurationSets(ctx: OperationContext, rawToken: unknown, rawSize: unknown): unknown {
  const p = page(ctx, [...ctx.state.configurationSets.keys()], 'ListConfigurationSets', rawToken, rawSize, 1000);
  return { ConfigurationSets: p.items, NextToken: p.nextToken };
}

function configurationSetOrThrow(ctx: OperationContext, name: string | undefined) {
  const cs = name === undefined ? undefined : ctx.state.configurationSets.get(name);
  if (!cs) throw notFound(`Configuration set <${name ?? ''}> does not exist.`);
  return cs;
}

const listContacts: Operation = {
  name: 'ListContacts',
  method: 'POST',
  path: '/v2/email/contact-lists/{ContactListName}/contacts/list',
  handle: (ctx, req) => {
    const list = listOrThrow(ctx, req.params.ContactListName);
    const size = pageSize(req.body.PageSize, 1000, 1000);
    let status: number | undefined;
    let topic: number | undefined;
    let topicName = '';
    let useDefault = false;
    const filter = req.body.Filter;
    if (filter !== undefined && filter !== null) {
      if (!isRecord(filter)) throw badRequest('Filter must be an object.');
      if (filter.FilteredStatus !== undefined) status = prefCode(parseStatus(filter.FilteredStatus, 'Filter.FilteredStatus'));
      const tf = filter.TopicFilter;
      if (tf !== undefined && tf !== null) {
        if (!isRecord(tf) || typeof tf.TopicName !== 'string') throw badRequest('Filter.TopicFilter.TopicName is required.');
        topicName = tf.TopicName;
        topic = list.topicIdx(topicName);
        if (topic === undefined) throw badRequest(`Topic ${topicName} does not exist in list ${list.name}.`);
        useDefault = tf.UseDefaultIfPreferenceUnavailable === true;
      }
    }
    const scope = `ListContacts\0${list.name}\0${status ?? ''}\0${topicName}\0${useDefault}`;
    const start = resume(ctx, req.body.NextToken, scope, 'BadRequestException');
    const defaults = topicDefaults(list);
    const defaultCode = topic === undefined ? 0 : prefCode(list.topics[topic]?.defaultSubscriptionStatus ?? 'OPT_OUT');

    // Like SES, a filtered page examines a fixed window of the list (PageSize rows) and
    // returns only the matches in it, so a page can be empty and still carry a NextToken.
    const end = Math.min(list.count, start + size);
    const contacts: unknown[] = [];
    for (let i = start; i < end; i++) {
      if (list.isDeleted(i)) continue;
      if (status !== undefined) {
        let code: number;
        if (topic === undefined) {
          code = list.unsubscribeAll(i) ? prefCode('OPT_OUT') : prefCode('OPT_IN');
        } else {
          code = list.pref(topic, i);
          if (code === 0 && useDefault) code = defaultCode;
        }
        if (code !== status) continue;
      }
      contacts.push({
        EmailAddress: list.email(i),
        TopicPreferences: explicitPreferences(list, i),
        TopicDefaultPreferences: defaults,
        UnsubscribeAll: list.unsubscribeAll(i),
        LastUpdatedTimestamp: epochSeconds(list.lastUpdated(i)),
      });
    }
    return { Contacts: contacts, NextToken: end < list.count ? ctx.tokens.issue(scope, end) : undefined };
  },
};

const listSuppressedDestinations: Operation = {
  name: 'ListSuppressedDestinations',
  method: 'GET',
  path: '/v2/email/suppression/addresses',
  handle: (ctx, req) => {
    const reasons = req.query.getAll('Reason');
    for (const r of reasons) {
      if (r !== 'BOUNCE' && r !== 'COMPLAINT') throw badRequest(`Reason must be BOUNCE or COMPLAINT, got ${r}.`);
    }
    const from = parseQueryDate(req.query.get('StartDate'), 'StartDate');
    const to = parseQueryDate(req.query.get('EndDate'), 'EndDate');
    if (from !== undefined && to !== undefined && from > to) throw badRequest('StartDate must be before EndDate.');
    const size = pageSize(req.query.get('PageSize'), 1000, 1000);
    const reasonSet = new Set(reasons);
    const scope = `ListSuppressedDestinations\0${[...reasonSet].sort().join(',')}\0${from ?? ''}\0${to ?? ''}`;
    const start = resume(ctx, req.query.get('NextToken'), scope, 'InvalidNextTokenException');

    const sup = ctx.state.suppressions;
    const items: unknown[] = [];
    let i = start;
    for (; i < sup.count && items.length < size; i++) {
      const t = sup.lastUpdated(i);
      if (from !== undefined && t < from) continue;
      if (to !== undefined && t > to) continue;
      const reason = sup.reason(i);
      if (reasonSet.size > 0 && !reasonSet.has(reason)) continue;
      items.push({ EmailAddress: sup.email(i), Reason: reason, LastUpdateTime: epochSeconds(t) });
    }
    return { SuppressedDestinationSummaries: items, NextToken: i < sup.count ? ctx.tokens.issue(scope, i) : undefined };
  },
};

export const operations: Operation[] = [
  getAccount,
  {
    name: 'ListEmailIdentities',
    method: 'POST',
    path: '/v2/email/list-identities',
    handle: (ctx, req) => listEmailIdentities(ctx, req.body.NextToken, req.body.PageSize),
  },
  {
    // Path used by SDK releases before ListEmailIdentities moved to POST.
    name: 'ListEmailIdentities',
    method: 'GET',
    path: '/v2/email/identities',
    handle: (ctx, req) => listEmailIdentities(ctx, req.query.get('NextToken'), req.query.get('PageSize')),
  },
  {
    name: 'ListConfigurationSets',
    method: 'POST',
    path: '/v2/email/list-configuration-sets',
    handle: (ctx, req) => listConfigurationSets(ctx, req.body.NextToken, req.body.PageSize),
  },
  {
    // Path used by SDK releases before ListConfigurationSets moved to POST.
    name: 'ListConfigurationSets',
    method: 'GET',
    path: '/v2/email/configuration-sets',
    handle: (ctx, req) => listConfigurationSets(ctx, req.query.get('NextToken'), req.query.get('PageSize')),
  },
  {
    name: 'GetConfigurationSet',
    method: 'GET',
    path: '/v2/email/configuration-sets/{ConfigurationSetName}',
    handle: (ctx, req) => {
      configurationSetOrThrow(ctx, req.params.ConfigurationSetName);
      return {
        ConfigurationSetName: req.params.ConfigurationSetName,
        DeliveryOptions: { TlsPolicy: 'OPTIONAL' },
        ReputationOptions: { ReputationMetricsEnabled: false },
        SendingOptions: { SendingEnabled: true },
        Tags: [],
      };
    },
  },
  {
    name: 'GetConfigurationSetEventDestinations',
    method: 'GET',
    path: '/v2/email/configuration-sets/{ConfigurationSetName}/event-destinations',
    handle: (ctx, req) => ({
      EventDestinations: configurationSetOrThrow(ctx, req.params.ConfigurationSetName).map((d) => ({
        Name: d.name,
        Enabled: d.enabled,
        MatchingEventTypes: [...d.matchingEventTypes],
        SnsDestination: d.snsTopicArn === undefined ? undefined : { TopicArn: d.snsTopicArn },
      })),
    }),
  },
  {
    name: 'ListContactLists',
    method: 'GET',
    path: '/v2/email/contact-lists',
    handle: (ctx, req) => {
      const all = [...ctx.state.lists.values()].map((l) => ({ ContactListName: l.name, LastUpdatedTimestamp: epochSeconds(l.updatedAt) }));
      const p = page(ctx, all, 'ListContactLists', req.query.get('NextToken'), req.query.get('PageSize'), 1000);
      return { ContactLists: p.items, NextToken: p.nextToken };
    },
  },
  {
    name: 'GetContactList',
    method: 'GET',
    path: '/v2/email/contact-lists/{ContactListName}',
    handle: (ctx, req) => {
      const list = listOrThrow(ctx, req.params.ContactListName);
      return {
        ContactListName: list.name,
        Topics: list.topics.map((t) => ({
          TopicName: t.name,
          DisplayName: t.displayName,
          Description: t.description,
          DefaultSubscriptionStatus: t.defaultSubscriptionStatus,
        })),
        Description: list.description,
        CreatedTimestamp: epochSeconds(list.createdAt),
        LastUpdatedTimestamp: epochSeconds(list.updatedAt),
        Tags: [],
      };
    },
  },
  listContacts,
  {
    name: 'GetContact',
    method: 'GET',
    path: '/v2/email/contact-lists/{ContactListName}/contacts/{EmailAddress}',
    handle: (ctx, req) => {
      const list = listOrThrow(ctx, req.params.ContactListName);
      const i = list.indexOf(req.params.EmailAddress ?? '');
      if (i === undefined) throw notFound(`Contact ${req.params.EmailAddress ?? ''} does not exist in list ${list.name}.`);
      return {
        ContactListName: list.name,
        EmailAddress: list.email(i),
        TopicPreferences: explicitPreferences(list, i),
        TopicDefaultPreferences: topicDefaults(list),
        UnsubscribeAll: list.unsubscribeAll(i),
        AttributesData: list.attributesData(i),
        CreatedTimestamp: epochSeconds(list.contactCreatedAt(i)),
        LastUpdatedTimestamp: epochSeconds(list.lastUpdated(i)),
      };
    },
  },
  listSuppressedDestinations,
  {
    name: 'GetSuppressedDestination',
    method: 'GET',
    path: '/v2/email/suppression/addresses/{EmailAddress}',
    handle: (ctx, req) => {
      const sup = ctx.state.suppressions;
      const i = sup.indexOf(req.params.EmailAddress ?? '');
      if (i === undefined) throw notFound(`Email address ${req.params.EmailAddress ?? ''} does not exist on your suppression list.`);
      const messageId = sup.messageId(i);
      const feedbackId = sup.feedbackId(i);
      return {
        SuppressedDestination: {
          EmailAddress: sup.email(i),
          Reason: sup.reason(i),
          LastUpdateTime: epochSeconds(sup.lastUpdated(i)),
          Attributes: messageId === undefined && feedbackId === undefined ? undefined : { MessageId: messageId, FeedbackId: feedbackId },
        },
      };
    },
  },
];
