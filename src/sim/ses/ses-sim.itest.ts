import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import {
  BadRequestException,
  GetAccountCommand,
  GetConfigurationSetEventDestinationsCommand,
  GetContactCommand,
  GetContactListCommand,
  GetSuppressedDestinationCommand,
  InvalidNextTokenException,
  ListConfigurationSetsCommand,
  ListContactListsCommand,
  ListContactsCommand,
  ListEmailIdentitiesCommand,
  ListSuppressedDestinationsCommand,
  NotFoundException,
  SESv2Client,
  TooManyRequestsException,
  paginateListContacts,
} from '@aws-sdk/client-sesv2';
import type { Contact, ListContactsCommandInput, ListSuppressedDestinationsCommandInput, SuppressedDestinationSummary } from '@aws-sdk/client-sesv2';

import { startSesSim } from './index.js';
import type { SesSim, SesSimContactSeed, SesSimOptions } from './index.js';

const T0 = Date.parse('2025-06-01T00:00:00.000Z');
const MIN = 60_000;

let sims: SesSim[] = [];
afterEach(async () => {
  await Promise.all(sims.map((s) => s.close()));
  sims = [];
});

async function start(opts: SesSimOptions = {}): Promise<SesSim> {
  const sim = await startSesSim({ rps: Infinity, ...opts });
  sims.push(sim);
  return sim;
}

function client(sim: SesSim): SESv2Client {
  return new SESv2Client({
    region: 'us-east-1',
    endpoint: sim.endpoint,
    credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
    maxAttempts: 1,
  });
}

async function catchError(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected the call to fail');
}

const newsletter = {
  name: 'Newsletter',
  description: 'Main list',
  topics: [
    { name: 'news', displayName: 'News', defaultSubscriptionStatus: 'OPT_IN' as const },
    { name: 'promos', displayName: 'Promotions', defaultSubscriptionStatus: 'OPT_OUT' as const },
  ],
};

async function allContacts(ses: SESv2Client, input: ListContactsCommandInput): Promise<{ pages: Contact[][]; tokens: Array<string | undefined> }> {
  const pages: Contact[][] = [];
  const tokens: Array<string | undefined> = [];
  let NextToken: string | undefined;
  do {
    const r = await ses.send(new ListContactsCommand({ ...input, NextToken }));
    pages.push(r.Contacts ?? []);
    tokens.push(r.NextToken);
    NextToken = r.NextToken;
  } while (NextToken);
  return { pages, tokens };
}

async function allSuppressions(ses: SESv2Client, input: ListSuppressedDestinationsCommandInput): Promise<SuppressedDestinationSummary[]> {
  const out: SuppressedDestinationSummary[] = [];
  let NextToken: string | undefined;
  do {
    const r = await ses.send(new ListSuppressedDestinationsCommand({ ...input, NextToken }));
    out.push(...(r.SuppressedDestinationSummaries ?? []));
    NextToken = r.NextToken;
  } while (NextToken);
  return out;
}

describe('SES v2 simulator with the real AWS SDK', () => {
  it('pages through 2,500 contacts with NextToken and returns SES-shaped contacts', async () => {
    const sim = await start();
    sim.seed({
      contactLists: [newsletter],
      contacts: Array.from({ length: 2500 }, (_, i): SesSimContactSeed => ({
        list: 'Newsletter',
        email: `person${i}@example.org`,
        topicPreferences: i % 3 === 0 ? { promos: 'OPT_IN' } : {},
        unsubscribeAll: i % 100 === 0,
        lastUpdated: new Date(T0 + i * 1000 + 123),
      })),
    });
    const ses = client(sim);
    const { pages, tokens } = await allContacts(ses, { ContactListName: 'Newsletter', PageSize: 1000 });
    expect(pages.map((p) => p.length)).toEqual([1000, 1000, 500]);
    expect(tokens.map((t) => typeof t)).toEqual(['string', 'string', 'undefined']);
    const contacts = pages.flat();
    expect(new Set(contacts.map((c) => c.EmailAddress)).size).toBe(2500);

    const c3 = contacts[3];
    expect(c3).toMatchObject({
      EmailAddress: 'person3@example.org',
      TopicPreferences: [{ TopicName: 'promos', SubscriptionStatus: 'OPT_IN' }],
      TopicDefaultPreferences: [
        { TopicName: 'news', SubscriptionStatus: 'OPT_IN' },
        { TopicName: 'promos', SubscriptionStatus: 'OPT_OUT' },
      ],
      UnsubscribeAll: false,
    });
    // Epoch-seconds with a fraction must survive the SDK's timestamp parsing to the millisecond.
    expect(c3?.LastUpdatedTimestamp).toEqual(new Date(T0 + 3000 + 123));
    expect(contacts[100]?.UnsubscribeAll).toBe(true);
    expect(contacts[1]?.TopicPreferences).toEqual([]);

    let viaPaginator = 0;
    for await (const page of paginateListContacts({ client: ses, pageSize: 700 }, { ContactListName: 'Newsletter' })) {
      viaPaginator += page.Contacts?.length ?? 0;
    }
    expect(viaPaginator).toBe(2500);
  });

  it('returns empty filtered pages that still carry a NextToken', async () => {
    const sim = await start();
    sim.seed({
      contactLists: [newsletter],
      contacts: Array.from({ length: 3000 }, (_, i): SesSimContactSeed => ({
        list: 'Newsletter',
        email: `p${i}@example.org`,
        // The first 1000 opted out of news; of the rest, every other one has no explicit preference.
        topicPreferences: i < 1000 ? { news: 'OPT_OUT' } : i % 2 === 0 ? { news: 'OPT_IN' } : {},
      })),
    });
    const ses = client(sim);

    const explicitOnly = await allContacts(ses, {
      ContactListName: 'Newsletter',
      PageSize: 1000,
      Filter: { FilteredStatus: 'OPT_IN', TopicFilter: { TopicName: 'news', UseDefaultIfPreferenceUnavailable: false } },
    });
    expect(explicitOnly.pages.map((p) => p.length)).toEqual([0, 500, 500]);
    expect(typeof explicitOnly.tokens[0]).toBe('string');
    expect(explicitOnly.pages.flat().every((c) => c.TopicPreferences?.[0]?.SubscriptionStatus === 'OPT_IN')).toBe(true);

    const withDefault = await allContacts(ses, {
      ContactListName: 'Newsletter',
      PageSize: 1000,
      Filter: { FilteredStatus: 'OPT_IN', TopicFilter: { TopicName: 'news', UseDefaultIfPreferenceUnavailable: true } },
    });
    expect(withDefault.pages.flat()).toHaveLength(2000);

    const optedOut = await allContacts(ses, {
      ContactListName: 'Newsletter',
      PageSize: 1000,
      Filter: { FilteredStatus: 'OPT_OUT', TopicFilter: { TopicName: 'news' } },
    });
    expect(optedOut.pages.map((p) => p.length)).toEqual([1000, 0, 0]);

    const err = await catchError(
      ses.send(new ListContactsCommand({ ContactListName: 'Newsletter', Filter: { FilteredStatus: 'OPT_IN', TopicFilter: { TopicName: 'nope' } } })),
    );
    expect(err).toBeInstanceOf(BadRequestException);
    const tooBig = await catchError(ses.send(new ListContactsCommand({ ContactListName: 'Newsletter', PageSize: 1001 })));
    expect(tooBig).toBeInstanceOf(BadRequestException);
    const missing = await catchError(ses.send(new ListContactsCommand({ ContactListName: 'Nope' })));
    expect(missing).toBeInstanceOf(NotFoundException);
  });

  it('lists suppressions by LastUpdateTime window and reason, and sees suppressions added between runs', async () => {
    const sim = await start();
    sim.seed({
      suppressions: Array.from({ length: 120 }, (_, i) => ({
        email: `s${i}@example.org`,
        reason: i % 10 === 0 ? ('COMPLAINT' as const) : ('BOUNCE' as const),
        lastUpdated: new Date(T0 + i * MIN),
      })),
    });
    const ses = client(sim);

    const window = await allSuppressions(ses, { StartDate: new Date(T0 + 10 * MIN), EndDate: new Date(T0 + 59 * MIN), PageSize: 20 });
    expect(window.map((s) => s.EmailAddress)).toEqual(Array.from({ length: 50 }, (_, k) => `s${k + 10}@example.org`));
    expect(window[0]).toEqual({ EmailAddress: 's10@example.org', Reason: 'COMPLAINT', LastUpdateTime: new Date(T0 + 10 * MIN) });

    const complaints = await allSuppressions(ses, { Reasons: ['COMPLAINT'] });
    expect(complaints).toHaveLength(12);

    const runEnd = new Date(T0 + 200 * MIN);
    const firstRun = await allSuppressions(ses, { EndDate: runEnd });
    expect(firstRun).toHaveLength(120);

    sim.seed({
      suppressions: Array.from({ length: 50 }, (_, i) => ({
        email: `late${i}@example.org`,
        reason: 'BOUNCE' as const,
        lastUpdated: new Date(T0 + (300 + i) * MIN),
      })),
    });
    const secondRun = await allSuppressions(ses, { StartDate: runEnd, EndDate: new Date(T0 + 1000 * MIN) });
    expect(secondRun.map((s) => s.EmailAddress)).toEqual(Array.from({ length: 50 }, (_, i) => `late${i}@example.org`));

    const one = await ses.send(new GetSuppressedDestinationCommand({ EmailAddress: 'S10@example.org' }));
    expect(one.SuppressedDestination).toMatchObject({ EmailAddress: 's10@example.org', Reason: 'COMPLAINT', LastUpdateTime: new Date(T0 + 10 * MIN) });
    const missing = await catchError(ses.send(new GetSuppressedDestinationCommand({ EmailAddress: 'nobody@example.org' })));
    expect(missing).toBeInstanceOf(NotFoundException);
  });

  it('expires NextTokens with the error class SES models for each operation', async () => {
    let clock = T0;
    const sim = await start({ now: () => clock, tokenTtlMs: 60_000 });
    sim.seed({
      contactLists: [newsletter],
      contacts: Array.from({ length: 30 }, (_, i) => ({ list: 'Newsletter', email: `c${i}@example.org` })),
      suppressions: Array.from({ length: 30 }, (_, i) => ({ email: `s${i}@example.org`, reason: 'BOUNCE' as const, lastUpdated: new Date(T0 - i * MIN) })),
    });
    const ses = client(sim);
    const supInput = { StartDate: new Date(T0 - 1000 * MIN), EndDate: new Date(T0), PageSize: 10 };
    const sup1 = await ses.send(new ListSuppressedDestinationsCommand(supInput));
    const con1 = await ses.send(new ListContactsCommand({ ContactListName: 'Newsletter', PageSize: 10 }));
    expect(sup1.NextToken).toBeTruthy();
    expect(con1.NextToken).toBeTruthy();

    // A token is reusable until it expires: retrying a page after a throttle resends it.
    clock += 30_000;
    const retry1 = await ses.send(new ListSuppressedDestinationsCommand({ ...supInput, NextToken: sup1.NextToken }));
    const retry2 = await ses.send(new ListSuppressedDestinationsCommand({ ...supInput, NextToken: sup1.NextToken }));
    expect(retry1.SuppressedDestinationSummaries).toEqual(retry2.SuppressedDestinationSummaries);

    const otherWindow = await catchError(
      ses.send(new ListSuppressedDestinationsCommand({ ...supInput, StartDate: new Date(T0 - 5 * MIN), NextToken: sup1.NextToken })),
    );
    expect(otherWindow).toBeInstanceOf(InvalidNextTokenException);

    clock += 30_001;
    const supErr = await catchError(ses.send(new ListSuppressedDestinationsCommand({ ...supInput, NextToken: sup1.NextToken })));
    expect(supErr).toBeInstanceOf(InvalidNextTokenException);
    expect((supErr as InvalidNextTokenException).$metadata.httpStatusCode).toBe(400);
    // ListContacts does not model InvalidNextTokenException, so SES can only answer BadRequestException.
    const conErr = await catchError(ses.send(new ListContactsCommand({ ContactListName: 'Newsletter', PageSize: 10, NextToken: con1.NextToken })));
    expect(conErr).toBeInstanceOf(BadRequestException);

    const fresh = await ses.send(new ListSuppressedDestinationsCommand(supInput));
    sim.expireTokens();
    const onDemand = await catchError(ses.send(new ListSuppressedDestinationsCommand({ ...supInput, NextToken: fresh.NextToken })));
    expect(onDemand).toBeInstanceOf(InvalidNextTokenException);
  });

  it('throttles the whole account at rps with TooManyRequestsException (HTTP 429)', async () => {
    let clock = T0;
    const sim = await start({ rps: 1, now: () => clock });
    sim.seed({ contactLists: [newsletter] });
    const ses = client(sim);
    await ses.send(new GetAccountCommand({}));
    const err = await catchError(ses.send(new ListContactListsCommand({})));
    expect(err).toBeInstanceOf(TooManyRequestsException);
    expect((err as TooManyRequestsException).$metadata.httpStatusCode).toBe(429);
    expect(sim.throttled()).toBe(1);
    expect(sim.calls()).toEqual({ GetAccount: 1 });

    clock += 1000;
    await ses.send(new ListContactListsCommand({}));
    expect(sim.calls()).toEqual({ GetAccount: 1, ListContactLists: 1 });

    sim.setRps(Infinity);
    await Promise.all(Array.from({ length: 20 }, () => ses.send(new GetAccountCommand({}))));
    expect(sim.calls().GetAccount).toBe(21);
    sim.resetCalls();
    expect(sim.calls()).toEqual({});
    expect(sim.throttled()).toBe(0);
  });

  it('throttles on the real clock by default', async () => {
    const sim = await startSesSim();
    sims.push(sim);
    const ses = client(sim);
    const results = await Promise.allSettled([1, 2, 3].map(() => ses.send(new GetAccountCommand({}))));
    expect(results.filter((r) => r.status === 'rejected')).toHaveLength(2);
    expect(sim.throttled()).toBe(2);
  });

  it('serves account status, identities, configuration sets, contact lists and contacts', async () => {
    const sim = await start({
      seed: {
        account: { productionAccessEnabled: false, max24HourSend: 200, maxSendRate: 1, sentLast24Hours: 17 },
        identities: [{ name: 'example.org' }, { name: 'ops@example.org', verificationStatus: 'PENDING' }],
        configurationSets: [
          {
            name: 'marketing',
            eventDestinations: [
              {
                name: 'to-tajo',
                enabled: true,
                matchingEventTypes: ['SEND', 'DELIVERY', 'BOUNCE', 'COMPLAINT'],
                snsTopicArn: 'arn:aws:sns:us-east-1:123456789012:ses-events',
              },
              { name: 'off', enabled: false, matchingEventTypes: ['OPEN'] },
            ],
          },
          { name: 'transactional', eventDestinations: [] },
        ],
        contactLists: [{ ...newsletter, topics: [...newsletter.topics.map((t) => ({ ...t, description: `${t.displayName} topic` }))] }],
        contacts: [
          {
            list: 'Newsletter',
            email: 'Ann@Example.org',
            topicPreferences: { news: 'OPT_OUT' },
            attributesData: '{"firstName":"Ann"}',
            lastUpdated: new Date(T0),
          },
        ],
      },
    });
    const ses = client(sim);

    const account = await ses.send(new GetAccountCommand({}));
    expect(account).toMatchObject({
      ProductionAccessEnabled: false,
      SendingEnabled: true,
      EnforcementStatus: 'HEALTHY',
      SendQuota: { Max24HourSend: 200, MaxSendRate: 1, SentLast24Hours: 17 },
      SuppressionAttributes: { SuppressedReasons: ['BOUNCE', 'COMPLAINT'] },
    });

    const ids = await ses.send(new ListEmailIdentitiesCommand({}));
    expect(ids.EmailIdentities).toEqual([
      { IdentityType: 'DOMAIN', IdentityName: 'example.org', SendingEnabled: true, VerificationStatus: 'SUCCESS' },
      { IdentityType: 'EMAIL_ADDRESS', IdentityName: 'ops@example.org', SendingEnabled: true, VerificationStatus: 'PENDING' },
    ]);

    const sets = await ses.send(new ListConfigurationSetsCommand({ PageSize: 1 }));
    expect(sets.ConfigurationSets).toEqual(['marketing']);
    const sets2 = await ses.send(new ListConfigurationSetsCommand({ PageSize: 1, NextToken: sets.NextToken }));
    expect(sets2.ConfigurationSets).toEqual(['transactional']);
    expect(sets2.NextToken).toBeUndefined();

    const dests = await ses.send(new GetConfigurationSetEventDestinationsCommand({ ConfigurationSetName: 'marketing' }));
    expect(dests.EventDestinations).toEqual([
      {
        Name: 'to-tajo',
        Enabled: true,
        MatchingEventTypes: ['SEND', 'DELIVERY', 'BOUNCE', 'COMPLAINT'],
        SnsDestination: { TopicArn: 'arn:aws:sns:us-east-1:123456789012:ses-events' },
      },
      { Name: 'off', Enabled: false, MatchingEventTypes: ['OPEN'] },
    ]);
    expect(await catchError(ses.send(new GetConfigurationSetEventDestinationsCommand({ ConfigurationSetName: 'nope' })))).toBeInstanceOf(NotFoundException);

    const lists = await ses.send(new ListContactListsCommand({}));
    expect(lists.ContactLists?.map((l) => l.ContactListName)).toEqual(['Newsletter']);
    expect(lists.ContactLists?.[0]?.LastUpdatedTimestamp).toBeInstanceOf(Date);

    const list = await ses.send(new GetContactListCommand({ ContactListName: 'Newsletter' }));
    expect(list).toMatchObject({
      ContactListName: 'Newsletter',
      Description: 'Main list',
      Topics: [
        { TopicName: 'news', DisplayName: 'News', Description: 'News topic', DefaultSubscriptionStatus: 'OPT_IN' },
        { TopicName: 'promos', DisplayName: 'Promotions', Description: 'Promotions topic', DefaultSubscriptionStatus: 'OPT_OUT' },
      ],
    });
    expect(await catchError(ses.send(new GetContactListCommand({ ContactListName: 'Nope' })))).toBeInstanceOf(NotFoundException);

    const contact = await ses.send(new GetContactCommand({ ContactListName: 'Newsletter', EmailAddress: 'ann@example.org' }));
    expect(contact).toMatchObject({
      ContactListName: 'Newsletter',
      EmailAddress: 'Ann@Example.org',
      TopicPreferences: [{ TopicName: 'news', SubscriptionStatus: 'OPT_OUT' }],
      UnsubscribeAll: false,
      AttributesData: '{"firstName":"Ann"}',
      LastUpdatedTimestamp: new Date(T0),
    });
    expect(await catchError(ses.send(new GetContactCommand({ ContactListName: 'Newsletter', EmailAddress: 'x@example.org' })))).toBeInstanceOf(
      NotFoundException,
    );

    expect(sim.calls()).toMatchObject({
      GetAccount: 1,
      ListEmailIdentities: 1,
      ListConfigurationSets: 2,
      GetConfigurationSetEventDestinations: 2,
      GetContact: 2,
    });
  });

  it('refuses a request without an Authorization header', async () => {
    const sim = await start();
    const res = await fetch(`${sim.endpoint}/v2/email/account`);
    expect(res.status).toBe(403);
    expect(res.headers.get('x-amzn-errortype')).toBe('MissingAuthenticationTokenException');
    expect(await res.json()).toEqual({ message: 'Missing Authentication Token' });
  });

  it('generates data deterministically from a seed', async () => {
    const opts = { lists: 2, topicsPerList: 3, contacts: 5000, suppressions: 1000, seed: 7 };
    const a = await start({ now: () => T0 });
    const b = await start({ now: () => T0 });
    a.generate(opts);
    b.generate(opts);
    const digest = (sim: SesSim) => createHash('sha256').update(JSON.stringify(sim.data())).digest('hex');
    expect(digest(a)).toBe(digest(b));
    const c = await start({ now: () => T0 });
    c.generate({ ...opts, seed: 8 });
    expect(digest(c)).not.toBe(digest(a));
  });

  it('generates 100,000 contacts fast and serves them', async () => {
    const sim = await start({ now: () => T0 });
    const t = performance.now();
    sim.generate({ lists: 4, topicsPerList: 5, contacts: 100_000, suppressions: 20_000, seed: 42 });
    expect(performance.now() - t).toBeLessThan(2000);

    const data = sim.data();
    expect(data.contactLists.map((l) => l.name)).toEqual(['list-1', 'list-2', 'list-3', 'list-4']);
    expect(data.contacts).toHaveLength(100_000);
    expect(data.suppressions).toHaveLength(20_000);
    const unsub = data.contacts.filter((c) => c.unsubscribeAll).length;
    expect(unsub).toBeGreaterThan(1500);
    expect(unsub).toBeLessThan(2500);

    const ses = client(sim);
    const { pages } = await allContacts(ses, { ContactListName: 'list-2' });
    expect(pages.flat()).toHaveLength(25_000);
    const got = await ses.send(new GetContactCommand({ ContactListName: 'list-2', EmailAddress: 'user1@example.com' }));
    expect(JSON.parse(got.AttributesData ?? '{}')).toMatchObject({ lastName: '1' });
  });
});
