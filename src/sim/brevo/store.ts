import type { BrevoSimState, BrevoSimSummary, SimContact, SimDroppedValue, SimEvent, SimProcess, SimUnblock } from './types.js';

// In-memory account state with O(1) lookups by email and id. Handlers mutate it through the
// methods below so the Brevo rules (attribute strictness, blocklist, list membership) live
// in one place.

export interface ContactRec {
  id: number;
  email: string;
  attributes: Record<string, unknown>;
  emailBlacklisted: boolean;
  smsBlacklisted: boolean;
  extId?: string;
  listIds: Set<number>;
  createdAt: string;
  modifiedAt: string;
}

export interface AttributeRec {
  category: string;
  name: string;
  type: string;
  enumeration?: Array<{ value: number; label: string }>;
}

export interface FolderRec {
  id: number;
  name: string;
}

export interface ListRec {
  id: number;
  name: string;
  folderId: number;
  createdAt: string;
  members: Set<number>;
}

export interface ProcessRec {
  id: number;
  name: string;
  status: 'queued' | 'in_process' | 'completed';
  createdAt: string;
  completedAt?: string;
  notifyUrl?: string;
  invalid: Array<{ email: string; reason: string }>;
  duplicates: Array<{ email: string; reason: string }>;
}

/** How an empty value ("" or null) is treated when applying attributes. */
export type EmptyValueMode = 'clear' | 'ignore';

// A fresh Brevo account already holds a few normal attributes; seeding them keeps
// "attribute exists" checks honest (the connector must not assume an empty account).
const DEFAULT_ATTRIBUTES: AttributeRec[] = [
  { category: 'normal', name: 'FIRSTNAME', type: 'text' },
  { category: 'normal', name: 'LASTNAME', type: 'text' },
  { category: 'normal', name: 'SMS', type: 'text' },
];

// Lists start at a different number than folders so that a folder id passed where a list id
// is expected (or the reverse) fails instead of silently matching.
const FIRST_LIST_ID = 10;

const EMAIL_RE = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})$/;

export function isValidEmail(v: unknown): v is string {
  return typeof v === 'string' && v.length <= 254 && EMAIL_RE.test(v);
}

// Brevo's FAQ (developers.brevo.com/docs/other-common-questions) says date attributes take
// 'yyyy-mm-dd' only; anything else (including a full ISO-8601 timestamp) is dropped here.
export function isValidDate(v: unknown): boolean {
  if (typeof v !== 'string') return false;
  const m = DATE_RE.exec(v);
  if (!m) return false;
  const y = Number(m[1]);
  const mo = Number(m[2]);
  const d = Number(m[3]);
  const dt = new Date(Date.UTC(y, mo - 1, d));
  return dt.getUTCFullYear() === y && dt.getUTCMonth() === mo - 1 && dt.getUTCDate() === d;
}

/** Returns why `value` does not fit an attribute of this definition, or null when it fits. */
export function typeMismatch(def: AttributeRec, value: unknown): string | null {
  switch (def.type) {
    case 'text':
      return typeof value === 'string' ? null : `text attribute expects a string, got ${describe(value)}`;
    case 'date':
      return isValidDate(value) ? null : `date attribute expects 'YYYY-MM-DD', got ${describe(value)}`;
    case 'float':
      return typeof value === 'number' && Number.isFinite(value) ? null : `float attribute expects a JSON number, got ${describe(value)}`;
    case 'boolean':
      return typeof value === 'boolean' ? null : `boolean attribute expects a JSON boolean, got ${describe(value)}`;
    case 'id':
      return typeof value === 'string' || (typeof value === 'number' && Number.isInteger(value))
        ? null
        : `id attribute expects a string or integer, got ${describe(value)}`;
    case 'category': {
      const enumeration = def.enumeration ?? [];
      const ok = enumeration.some((e) => e.value === value || e.label === value || String(e.value) === value);
      return ok ? null : `category attribute expects one of its enumeration values, got ${describe(value)}`;
    }
    case 'multiple-choice':
      return Array.isArray(value) && value.every((x) => typeof x === 'string')
        ? null
        : `multiple-choice attribute expects an array of strings, got ${describe(value)}`;
    default:
      return null;
  }
}

function describe(v: unknown): string {
  const s = JSON.stringify(v);
  return `${Array.isArray(v) ? 'array' : v === null ? 'null' : typeof v} ${s === undefined ? '' : s.length > 60 ? s.slice(0, 57) + '...' : s}`.trim();
}

export class SimStore {
  contacts = new Map<string, ContactRec>();
  contactsById = new Map<number, ContactRec>();
  attributes = new Map<string, AttributeRec>();
  folders = new Map<number, FolderRec>();
  lists = new Map<number, ListRec>();
  events: SimEvent[] = [];
  /** The contact each event was attributed to (GET /v3/events filters on it). */
  eventContact = new WeakMap<SimEvent, number>();
  processes = new Map<number, ProcessRec>();
  dropped: SimDroppedValue[] = [];
  unblocks: SimUnblock[] = [];
  private seq = { contact: 0, folder: 0, list: FIRST_LIST_ID - 1, process: 0 };

  constructor(private readonly now: () => number) {
    this.reset();
  }

  reset(): void {
    this.contacts.clear();
    this.contactsById.clear();
    this.attributes.clear();
    for (const a of DEFAULT_ATTRIBUTES) this.attributes.set(a.name, { ...a });
    this.folders.clear();
    this.lists.clear();
    this.events = [];
    this.processes.clear();
    this.dropped = [];
    this.unblocks = [];
    this.seq = { contact: 0, folder: 0, list: FIRST_LIST_ID - 1, process: 0 };
  }

  iso(): string {
    return new Date(this.now()).toISOString();
  }

  findContact(email: string): ContactRec | undefined {
    return this.contacts.get(email.trim().toLowerCase());
  }

  createContact(email: string): ContactRec {
    const key = email.trim().toLowerCase();
    const at = this.iso();
    const c: ContactRec = {
      id: ++this.seq.contact,
      email: key,
      attributes: {},
      emailBlacklisted: false,
      smsBlacklisted: false,
      listIds: new Set(),
      createdAt: at,
      modifiedAt: at,
    };
    this.contacts.set(key, c);
    this.contactsById.set(c.id, c);
    return c;
  }

  touch(c: ContactRec): void {
    c.modifiedAt = this.iso();
  }

  /**
   * Applies attribute values the way Brevo does: an unknown name or a value of the wrong type
   * is dropped without failing the request, and recorded so a test can see it.
   */
  applyAttributes(c: ContactRec, attrs: Record<string, unknown>, empty: EmptyValueMode, source: string): void {
    for (const [rawName, value] of Object.entries(attrs)) {
      const name = rawName.toUpperCase();
      // EMAIL is an identifier, not a stored attribute; callers that honour it handle it first.
      if (name === 'EMAIL') continue;
      const def = this.attributes.get(name);
      if (!def) {
        this.drop(c.email, rawName, value, 'attribute does not exist in the account', source);
        continue;
      }
      if (value === null || value === '') {
        if (empty === 'clear') delete c.attributes[def.name];
        continue;
      }
      const why = typeMismatch(def, value);
      if (why) {
        this.drop(c.email, def.name, value, why, source);
        continue;
      }
      c.attributes[def.name] = value;
    }
  }

  drop(email: string, attribute: string, value: unknown, reason: string, source: string): void {
    this.dropped.push({ email, attribute, value: structuredClone(value), reason, source });
  }

  setEmailBlacklisted(c: ContactRec, value: boolean, source: string): void {
    if (!value) this.unblocks.push({ email: c.email, source, wasBlacklisted: c.emailBlacklisted, at: this.iso() });
    c.emailBlacklisted = value;
  }

  /** Changes a contact's email; Brevo lifts the email blocklisting when it does. */
  changeEmail(c: ContactRec, newEmail: string, source: string): void {
    const key = newEmail.trim().toLowerCase();
    if (key === c.email) return;
    this.contacts.delete(c.email);
    c.email = key;
    this.contacts.set(key, c);
    this.unblocks.push({ email: key, source: `${source} (email change)`, wasBlacklisted: c.emailBlacklisted, at: this.iso() });
    c.emailBlacklisted = false;
  }

  addToList(c: ContactRec, listId: number): boolean {
    const list = this.lists.get(listId);
    if (!list || list.members.has(c.id)) return false;
    list.members.add(c.id);
    c.listIds.add(listId);
    return true;
  }

  removeFromList(c: ContactRec, listId: number): boolean {
    const list = this.lists.get(listId);
    if (!list || !list.members.has(c.id)) return false;
    list.members.delete(c.id);
    c.listIds.delete(listId);
    return true;
  }

  createFolder(name: string): FolderRec {
    const f = { id: ++this.seq.folder, name };
    this.folders.set(f.id, f);
    return f;
  }

  createList(name: string, folderId: number): ListRec {
    const l: ListRec = { id: ++this.seq.list, name, folderId, createdAt: this.iso(), members: new Set() };
    this.lists.set(l.id, l);
    return l;
  }

  createProcess(name: string, notifyUrl: string | undefined): ProcessRec {
    const p: ProcessRec = { id: ++this.seq.process, name, status: 'queued', createdAt: this.iso(), invalid: [], duplicates: [] };
    if (notifyUrl !== undefined) p.notifyUrl = notifyUrl;
    this.processes.set(p.id, p);
    return p;
  }

  contactView(c: ContactRec): SimContact {
    return {
      email: c.email,
      id: c.id,
      attributes: structuredClone(c.attributes),
      emailBlacklisted: c.emailBlacklisted,
      listIds: [...c.listIds].sort((a, b) => a - b),
      createdAt: c.createdAt,
      modifiedAt: c.modifiedAt,
    };
  }

  processView(p: ProcessRec): SimProcess {
    const v: SimProcess = { id: p.id, status: p.status, name: p.name, createdAt: p.createdAt };
    if (p.completedAt !== undefined) v.completedAt = p.completedAt;
    if (p.notifyUrl !== undefined) v.notifyUrl = p.notifyUrl;
    if (p.status === 'completed') v.import_report = { invalid: [...p.invalid, ...p.duplicates].map((r) => ({ ...r })) };
    return v;
  }

  /** Counts of what the simulator holds, cheap enough to poll (state() copies everything). */
  summary(): BrevoSimSummary {
    let blocklisted = 0;
    for (const c of this.contacts.values()) if (c.emailBlacklisted) blocklisted++;
    let importsOpen = 0;
    for (const p of this.processes.values()) if (p.status !== 'completed') importsOpen++;
    return {
      contacts: this.contacts.size,
      blocklisted,
      events: this.events.length,
      lists: this.lists.size,
      imports: this.processes.size,
      importsOpen,
      dropped: this.dropped.length,
      unblocks: this.unblocks.length,
    };
  }

  snapshot(): BrevoSimState {
    const contacts: BrevoSimState['contacts'] = {};
    for (const [k, c] of this.contacts) contacts[k] = this.contactView(c);
    return {
      contacts,
      attributes: [...this.attributes.values()].map((a) => ({ category: a.category, name: a.name, type: a.type })),
      folders: [...this.folders.values()].map((f) => ({ id: f.id, name: f.name })),
      lists: [...this.lists.values()].map((l) => ({ id: l.id, name: l.name, folderId: l.folderId })),
      events: structuredClone(this.events),
      processes: [...this.processes.values()].map((p) => this.processView(p)),
      dropped: structuredClone(this.dropped),
      unblocks: this.unblocks.map((u) => ({ ...u })),
    };
  }
}
