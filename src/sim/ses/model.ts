// In-memory state of the simulated SES account. Contacts are stored column-wise
// (typed arrays per field) so that 100,000+ generated contacts cost a few MB rather
// than one JS object each.

export type SubscriptionStatus = 'OPT_IN' | 'OPT_OUT';
export type SuppressionReason = 'BOUNCE' | 'COMPLAINT';
export type IdentityType = 'EMAIL_ADDRESS' | 'DOMAIN' | 'MANAGED_DOMAIN';
export type VerificationStatus = 'PENDING' | 'SUCCESS' | 'FAILED' | 'TEMPORARY_FAILURE' | 'NOT_STARTED';

export interface SesSimTopicSeed {
  name: string;
  displayName?: string;
  description?: string;
  defaultSubscriptionStatus: SubscriptionStatus;
}

export interface SesSimContactListSeed {
  name: string;
  description?: string;
  topics: SesSimTopicSeed[];
}

export interface SesSimContactSeed {
  list: string;
  email: string;
  /** Explicit preferences; merged into the contact's existing ones when re-seeded. */
  topicPreferences?: Record<string, SubscriptionStatus>;
  unsubscribeAll?: boolean;
  attributesData?: string;
  lastUpdated?: Date;
}

export interface SesSimSuppressionSeed {
  email: string;
  reason: SuppressionReason;
  lastUpdated: Date;
  messageId?: string;
  feedbackId?: string;
}

export interface SesSimAccount {
  /** false = the account is in the SES sandbox. */
  productionAccessEnabled: boolean;
  sendingEnabled: boolean;
  enforcementStatus: string;
  max24HourSend: number;
  maxSendRate: number;
  sentLast24Hours: number;
  suppressedReasons: SuppressionReason[];
  dedicatedIpAutoWarmupEnabled: boolean;
}

export interface SesSimIdentitySeed {
  name: string;
  /** Default: EMAIL_ADDRESS when the name contains '@', otherwise DOMAIN. */
  type?: IdentityType;
  sendingEnabled?: boolean;
  verificationStatus?: VerificationStatus;
}

export interface SesSimEventDestinationSeed {
  name: string;
  enabled: boolean;
  matchingEventTypes: string[];
  snsTopicArn?: string;
}

export interface SesSimConfigurationSetSeed {
  name: string;
  eventDestinations: SesSimEventDestinationSeed[];
}

export interface SesSimSeed {
  contactLists?: SesSimContactListSeed[];
  contacts?: SesSimContactSeed[];
  suppressions?: SesSimSuppressionSeed[];
  account?: Partial<SesSimAccount>;
  identities?: SesSimIdentitySeed[];
  configurationSets?: SesSimConfigurationSetSeed[];
}

/** Read-back shapes returned by `SesSim.data()`. */
export interface SesSimContact {
  list: string;
  email: string;
  topicPreferences: Record<string, SubscriptionStatus>;
  unsubscribeAll: boolean;
  attributesData?: string;
  created: Date;
  lastUpdated: Date;
}

export interface SesSimSuppression {
  email: string;
  reason: SuppressionReason;
  lastUpdated: Date;
  messageId?: string;
  feedbackId?: string;
}

export interface SesSimContactList {
  name: string;
  description?: string;
  topics: Array<Required<Pick<SesSimTopicSeed, 'name' | 'displayName' | 'defaultSubscriptionStatus'>> & { description?: string }>;
  created: Date;
  lastUpdated: Date;
}

export interface SesSimData {
  contactLists: SesSimContactList[];
  contacts: SesSimContact[];
  suppressions: SesSimSuppression[];
}

export const DEFAULT_ACCOUNT: SesSimAccount = {
  productionAccessEnabled: true,
  sendingEnabled: true,
  enforcementStatus: 'HEALTHY',
  max24HourSend: 50_000,
  maxSendRate: 14,
  sentLast24Hours: 0,
  suppressedReasons: ['BOUNCE', 'COMPLAINT'],
  dedicatedIpAutoWarmupEnabled: false,
};

// Preference codes in the byte columns; 0 means "no explicit preference".
const PREF_NONE = 0;
const PREF_IN = 1;
const PREF_OUT = 2;

export function prefCode(status: SubscriptionStatus): number {
  return status === 'OPT_IN' ? PREF_IN : PREF_OUT;
}

export function prefStatus(code: number): SubscriptionStatus | undefined {
  return code === PREF_IN ? 'OPT_IN' : code === PREF_OUT ? 'OPT_OUT' : undefined;
}

/** Growable byte column; reads past the end are 0 so a topic added late needs no backfill. */
class ByteColumn {
  private buf = new Uint8Array(256);
  get(i: number): number {
    return this.buf[i] ?? 0;
  }
  set(i: number, v: number): void {
    if (i >= this.buf.length) {
      let size = this.buf.length * 2;
      while (size <= i) size *= 2;
      const next = new Uint8Array(size);
      next.set(this.buf);
      this.buf = next;
    }
    this.buf[i] = v;
  }
}

class TimeColumn {
  private buf = new Float64Array(256);
  get(i: number): number {
    return this.buf[i] ?? 0;
  }
  set(i: number, v: number): void {
    if (i >= this.buf.length) {
      let size = this.buf.length * 2;
      while (size <= i) size *= 2;
      const next = new Float64Array(size);
      next.set(this.buf);
      this.buf = next;
    }
    this.buf[i] = v;
  }
}

export interface TopicState {
  name: string;
  displayName: string;
  description?: string;
  defaultSubscriptionStatus: SubscriptionStatus;
}

export class ContactListState {
  description: string | undefined;
  readonly topics: TopicState[] = [];
  private readonly topicIndex = new Map<string, number>();
  private readonly prefs: ByteColumn[] = [];
  count = 0;
  private readonly emails: string[] = [];
  private readonly byEmail = new Map<string, number>();
  private readonly unsub = new ByteColumn();
  private readonly created = new TimeColumn();
  private readonly updated = new TimeColumn();
  private readonly attrs = new Map<number, string>();
  // Generated contacts get attributes derived from their email on read instead of a stored string.
  private readonly generatedAttrs = new ByteColumn();

  constructor(
    readonly name: string,
    readonly createdAt: number,
    public updatedAt: number,
  ) {}

  upsertTopic(t: SesSimTopicSeed): number {
    const topic: TopicState = {
      name: t.name,
      displayName: t.displayName ?? t.name,
      defaultSubscriptionStatus: t.defaultSubscriptionStatus,
    };
    if (t.description !== undefined) topic.description = t.description;
    const existing = this.topicIndex.get(t.name);
    if (existing !== undefined) {
      this.topics[existing] = topic;
      return existing;
    }
    this.topics.push(topic);
    this.prefs.push(new ByteColumn());
    this.topicIndex.set(t.name, this.topics.length - 1);
    return this.topics.length - 1;
  }

  topicIdx(name: string): number | undefined {
    return this.topicIndex.get(name);
  }

  indexOf(email: string): number | undefined {
    return this.byEmail.get(email.toLowerCase());
  }

  private readonly deleted = new Set<number>();

  /** DeleteContact: the row stays (row indexes are page positions) but is no longer listed; seeding the email again adds a new row. */
  remove(email: string): boolean {
    const key = email.toLowerCase();
    const i = this.byEmail.get(key);
    if (i === undefined) return false;
    this.byEmail.delete(key);
    this.deleted.add(i);
    return true;
  }

  isDeleted(i: number): boolean {
    return this.deleted.has(i);
  }

  /** Returns the row index; creates the contact when it does not exist. */
  ensure(email: string, now: number): number {
    const key = email.toLowerCase();
    const found = this.byEmail.get(key);
    if (found !== undefined) return found;
    const i = this.count++;
    this.emails.push(email);
    this.byEmail.set(key, i);
    this.created.set(i, now);
    this.updated.set(i, now);
    return i;
  }

  email(i: number): string {
    return this.emails[i] ?? '';
  }
  pref(topic: number, i: number): number {
    return this.prefs[topic]?.get(i) ?? PREF_NONE;
  }
  setPref(topic: number, i: number, code: number): void {
    this.prefs[topic]?.set(i, code);
  }
  unsubscribeAll(i: number): boolean {
    return this.unsub.get(i) === 1;
  }
  setUnsubscribeAll(i: number, v: boolean): void {
    this.unsub.set(i, v ? 1 : 0);
  }
  contactCreatedAt(i: number): number {
    return this.created.get(i);
  }
  lastUpdated(i: number): number {
    return this.updated.get(i);
  }
  setLastUpdated(i: number, t: number): void {
    this.updated.set(i, t);
  }
  attributesData(i: number): string | undefined {
    const stored = this.attrs.get(i);
    if (stored !== undefined) return stored;
    if (this.generatedAttrs.get(i) === 1) return generatedAttributes(this.email(i));
    return undefined;
  }
  setAttributesData(i: number, data: string): void {
    this.attrs.set(i, data);
  }
  markGeneratedAttributes(i: number): void {
    this.attrs.delete(i);
    this.generatedAttrs.set(i, 1);
  }
}

function generatedAttributes(email: string): string {
  const local = email.slice(0, email.indexOf('@'));
  const digits = local.replace(/\D+/g, '');
  return JSON.stringify({ firstName: 'User', lastName: digits || local, source: 'ses-sim' });
}

export class SuppressionState {
  count = 0;
  private readonly emails: string[] = [];
  private readonly byEmail = new Map<string, number>();
  private readonly reasons = new ByteColumn();
  private readonly updated = new TimeColumn();
  private readonly messageIds = new Map<number, string>();
  private readonly feedbackIds = new Map<number, string>();

  upsert(email: string, reason: SuppressionReason, lastUpdated: number, messageId?: string, feedbackId?: string): void {
    const key = email.toLowerCase();
    let i = this.byEmail.get(key);
    if (i === undefined) {
      i = this.count++;
      this.emails.push(email);
      this.byEmail.set(key, i);
    }
    this.reasons.set(i, reason === 'COMPLAINT' ? 2 : 1);
    this.updated.set(i, lastUpdated);
    if (messageId !== undefined) this.messageIds.set(i, messageId);
    if (feedbackId !== undefined) this.feedbackIds.set(i, feedbackId);
  }

  indexOf(email: string): number | undefined {
    return this.byEmail.get(email.toLowerCase());
  }
  email(i: number): string {
    return this.emails[i] ?? '';
  }
  reason(i: number): SuppressionReason {
    return this.reasons.get(i) === 2 ? 'COMPLAINT' : 'BOUNCE';
  }
  lastUpdated(i: number): number {
    return this.updated.get(i);
  }
  messageId(i: number): string | undefined {
    return this.messageIds.get(i);
  }
  feedbackId(i: number): string | undefined {
    return this.feedbackIds.get(i);
  }
}

export interface IdentityState {
  name: string;
  type: IdentityType;
  sendingEnabled: boolean;
  verificationStatus: VerificationStatus;
}

export class SesState {
  account: SesSimAccount = { ...DEFAULT_ACCOUNT, suppressedReasons: [...DEFAULT_ACCOUNT.suppressedReasons] };
  readonly lists = new Map<string, ContactListState>();
  readonly suppressions = new SuppressionState();
  readonly identities = new Map<string, IdentityState>();
  readonly configurationSets = new Map<string, SesSimEventDestinationSeed[]>();

  constructor(private readonly now: () => number) {}

  upsertList(seed: SesSimContactListSeed): ContactListState {
    const t = this.now();
    let list = this.lists.get(seed.name);
    if (!list) {
      list = new ContactListState(seed.name, t, t);
      this.lists.set(seed.name, list);
    } else {
      list.updatedAt = t;
    }
    if (seed.description !== undefined) list.description = seed.description;
    for (const topic of seed.topics) list.upsertTopic(topic);
    return list;
  }

  /** Removes a contact from a contact list (as SES DeleteContact); false when it is not there. */
  deleteContact(list: string, email: string): boolean {
    return this.lists.get(list)?.remove(email) ?? false;
  }

  seed(data: SesSimSeed): void {
    if (data.account) {
      this.account = { ...this.account, ...data.account };
    }
    for (const id of data.identities ?? []) {
      const prev = this.identities.get(id.name);
      this.identities.set(id.name, {
        name: id.name,
        type: id.type ?? prev?.type ?? (id.name.includes('@') ? 'EMAIL_ADDRESS' : 'DOMAIN'),
        sendingEnabled: id.sendingEnabled ?? prev?.sendingEnabled ?? true,
        verificationStatus: id.verificationStatus ?? prev?.verificationStatus ?? 'SUCCESS',
      });
    }
    for (const cs of data.configurationSets ?? []) {
      this.configurationSets.set(
        cs.name,
        cs.eventDestinations.map((d) => ({ ...d, matchingEventTypes: [...d.matchingEventTypes] })),
      );
    }
    for (const l of data.contactLists ?? []) this.upsertList(l);
    for (const c of data.contacts ?? []) this.upsertContact(c);
    for (const s of data.suppressions ?? []) {
      this.suppressions.upsert(s.email, s.reason, s.lastUpdated.getTime(), s.messageId, s.feedbackId);
    }
  }

  upsertContact(c: SesSimContactSeed): void {
    const list = this.lists.get(c.list);
    // A seed that names an unknown list or topic is a bug in the test, not data SES could hold.
    if (!list) throw new Error(`ses-sim seed: contact ${c.email} names contact list "${c.list}", which was not seeded; add it to contactLists first`);
    const prefs = Object.entries(c.topicPreferences ?? {});
    const topicIdx = prefs.map(([topic]) => {
      const idx = list.topicIdx(topic);
      if (idx === undefined) throw new Error(`ses-sim seed: contact ${c.email} has a preference for topic "${topic}", which list "${c.list}" does not have`);
      return idx;
    });
    const t = c.lastUpdated?.getTime() ?? this.now();
    const i = list.ensure(c.email, t);
    prefs.forEach(([, status], k) => list.setPref(topicIdx[k] ?? 0, i, prefCode(status)));
    if (c.unsubscribeAll !== undefined) list.setUnsubscribeAll(i, c.unsubscribeAll);
    if (c.attributesData !== undefined) list.setAttributesData(i, c.attributesData);
    list.setLastUpdated(i, t);
  }

  data(): SesSimData {
    const contactLists: SesSimContactList[] = [];
    const contacts: SesSimContact[] = [];
    for (const list of this.lists.values()) {
      const cl: SesSimContactList = {
        name: list.name,
        topics: list.topics.map((t) => ({ ...t })),
        created: new Date(list.createdAt),
        lastUpdated: new Date(list.updatedAt),
      };
      if (list.description !== undefined) cl.description = list.description;
      contactLists.push(cl);
      for (let i = 0; i < list.count; i++) {
        if (list.isDeleted(i)) continue;
        const topicPreferences: Record<string, SubscriptionStatus> = {};
        list.topics.forEach((t, k) => {
          const s = prefStatus(list.pref(k, i));
          if (s) topicPreferences[t.name] = s;
        });
        const contact: SesSimContact = {
          list: list.name,
          email: list.email(i),
          topicPreferences,
          unsubscribeAll: list.unsubscribeAll(i),
          created: new Date(list.contactCreatedAt(i)),
          lastUpdated: new Date(list.lastUpdated(i)),
        };
        const attrs = list.attributesData(i);
        if (attrs !== undefined) contact.attributesData = attrs;
        contacts.push(contact);
      }
    }
    const suppressions: SesSimSuppression[] = [];
    const sup = this.suppressions;
    for (let i = 0; i < sup.count; i++) {
      const s: SesSimSuppression = { email: sup.email(i), reason: sup.reason(i), lastUpdated: new Date(sup.lastUpdated(i)) };
      const m = sup.messageId(i);
      const f = sup.feedbackId(i);
      if (m !== undefined) s.messageId = m;
      if (f !== undefined) s.feedbackId = f;
      suppressions.push(s);
    }
    return { contactLists, contacts, suppressions };
  }
}
