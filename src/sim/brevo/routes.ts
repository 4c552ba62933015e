import { isValidEmail } from './store.js';
import type { AttributeRec, ContactRec, ProcessRec, SimStore } from './store.js';
import type { SimEvent } from './types.js';

// Route handlers: Brevo API v3 paths and JSON shapes. Shapes follow Brevo's published
// OpenAPI (developers.brevo.com/reference, mirrored in api-evangelist/brevo openapi/*.yml);
// where Brevo documents nothing, the choice is marked "assumed".

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface Reply {
  status: number;
  body?: unknown;
  /** Raw text answer (the simulator's CSV reports). */
  text?: string;
  contentType?: string;
}

export interface Ctx {
  store: SimStore;
  params: string[];
  query: URLSearchParams;
  body: unknown;
  /** http://127.0.0.1:PORT, for URLs the simulator hands out (import reports). */
  origin: string;
  scheduleImport(p: ProcessRec, apply: () => void): void;
}

export interface Route {
  method: string;
  /** Route key used in stats, e.g. 'PUT /v3/contacts/:identifier'. */
  key: string;
  pattern: RegExp;
  handler: (ctx: Ctx) => Reply;
  /** The import route has its own body limit (importMaxBytes). */
  isImport?: boolean;
}

const bad = (message: string): ApiError => new ApiError(400, 'invalid_parameter', message);
const missing = (message: string): ApiError => new ApiError(400, 'missing_parameter', message);
const notFound = (message: string): ApiError => new ApiError(404, 'document_not_found', message);

// ---------------------------------------------------------------------------------------
// Argument checks: Brevo answers 400 for a field of the wrong JSON type.

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function bodyObject(body: unknown): Obj {
  if (body === undefined) return {};
  if (!isObj(body)) throw bad('The request body must be a JSON object');
  return body;
}

function optBool(o: Obj, key: string): boolean | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') throw bad(`${key} must be a boolean`);
  return v;
}

function optString(o: Obj, key: string): string | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw bad(`${key} must be a string`);
  return v;
}

function optObject(o: Obj, key: string): Obj | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (!isObj(v)) throw bad(`${key} must be an object`);
  return v;
}

function optIntArray(o: Obj, key: string): number[] | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'number' && Number.isInteger(x))) throw bad(`${key} must be an array of integers`);
  return v as number[];
}

function intParam(raw: string | undefined, what: string): number {
  if (raw === undefined || !/^\d+$/.test(raw)) throw bad(`${what} must be a positive integer`);
  return Number(raw);
}

function decodeParam(raw: string | undefined): string {
  try {
    return decodeURIComponent(raw ?? '');
  } catch {
    throw bad('Malformed URL-encoded path parameter');
  }
}

function checkListsExist(store: SimStore, ids: number[] | undefined, field: string): void {
  for (const id of ids ?? []) if (!store.lists.has(id)) throw bad(`${field}: list ${id} does not exist`);
}

interface Page {
  limit: number;
  offset: number;
  desc: boolean;
}

function page(query: URLSearchParams, defaultLimit: number, maxLimit: number): Page {
  const rawLimit = query.get('limit');
  const rawOffset = query.get('offset');
  const sort = query.get('sort') ?? 'desc';
  const limit = rawLimit === null ? defaultLimit : Number(rawLimit);
  const offset = rawOffset === null ? 0 : Number(rawOffset);
  if (!Number.isInteger(limit) || limit < 0 || limit > maxLimit) throw bad(`limit must be an integer between 0 and ${maxLimit}`);
  if (!Number.isInteger(offset) || offset < 0) throw bad('offset must be a non-negative integer');
  if (sort !== 'asc' && sort !== 'desc') throw bad("sort must be 'asc' or 'desc'");
  return { limit, offset, desc: sort === 'desc' };
}

/** Brevo lists in creation order, newest first unless sort=asc; ids grow with creation. */
function slice<T extends { id: number }>(items: Iterable<T>, p: Page): { items: T[]; count: number } {
  const all = [...items].sort((a, b) => (p.desc ? b.id - a.id : a.id - b.id));
  return { items: all.slice(p.offset, p.offset + p.limit), count: all.length };
}

// ---------------------------------------------------------------------------------------
// Views (response shapes)

function contactDetails(c: ContactRec): Obj {
  const v: Obj = {
    email: c.email,
    id: c.id,
    emailBlacklisted: c.emailBlacklisted,
    smsBlacklisted: c.smsBlacklisted,
    whatsappBlacklisted: false,
    createdAt: c.createdAt,
    modifiedAt: c.modifiedAt,
    attributes: structuredClone(c.attributes),
    listIds: [...c.listIds].sort((a, b) => a - b),
    listUnsubscribed: [],
  };
  if (c.extId !== undefined) (v.attributes as Obj).EXT_ID = c.extId;
  return v;
}

function listCounts(store: SimStore, members: Set<number>): { totalSubscribers: number; uniqueSubscribers: number; totalBlacklisted: number } {
  let blacklisted = 0;
  for (const id of members) if (store.contactsById.get(id)?.emailBlacklisted) blacklisted++;
  return { totalSubscribers: members.size, uniqueSubscribers: members.size, totalBlacklisted: blacklisted };
}

function folderView(store: SimStore, folderId: number, name: string): Obj {
  const members = new Set<number>();
  for (const l of store.lists.values()) if (l.folderId === folderId) for (const m of l.members) members.add(m);
  return { id: folderId, name, ...listCounts(store, members) };
}

// GET /v3/processes/{id}: Brevo's published schema (openapi brevo-process-api) reports the
// outcome of a completed IMPORTUSER process only as URLs of CSV files under
// `info.import` (`invalid_emails`, `duplicate_email_id`, ...; null when empty). The simulator
// serves those CSVs under /sim/processes/{id}/*.csv and ALSO returns a simulator-only field
// `import_report: {invalid: [{email, reason}]}` so tests need not download and parse a CSV.
function processView(ctx: Ctx, p: ProcessRec): Obj {
  const v: Obj = { id: p.id, name: p.name, status: p.status };
  if (p.status === 'completed') {
    const url = (file: string, rows: unknown[]): string | null => (rows.length > 0 ? `${ctx.origin}/sim/processes/${p.id}/${file}.csv` : null);
    v.info = {
      import: {
        invalid_emails: url('invalid_emails', p.invalid),
        duplicate_contact_id: null,
        duplicate_ext_id: null,
        duplicate_email_id: url('duplicate_email_id', p.duplicates),
        duplicate_phone_id: null,
        duplicate_whatsapp_id: null,
        duplicate_landline_number_id: null,
      },
    };
    v.import_report = { invalid: [...p.invalid, ...p.duplicates].map((r) => ({ ...r })) };
  }
  return v;
}

// ---------------------------------------------------------------------------------------
// Contacts

/** Path identifier without identifierType: Brevo takes an email or a numeric contact id. */
function resolveContact(ctx: Ctx): ContactRec | undefined {
  const { store } = ctx;
  const raw = decodeParam(ctx.params[0]);
  const type = ctx.query.get('identifierType');
  if (type === null) {
    if (/^\d+$/.test(raw)) return store.contactsById.get(Number(raw));
    if (raw.includes('@')) return store.findContact(raw);
    throw bad('identifier must be an email or a contact id, or set identifierType');
  }
  switch (type) {
    case 'email_id':
      return store.findContact(raw);
    case 'contact_id':
      return store.contactsById.get(intParam(raw, 'identifier'));
    case 'ext_id':
      for (const c of store.contacts.values()) if (c.extId === raw) return c;
      return undefined;
    case 'phone_id':
    case 'whatsapp_id':
    case 'landline_number_id':
      throw bad(`identifierType ${type} is not supported by the simulator`);
    default:
      throw bad('identifierType must be one of email_id, contact_id, ext_id, phone_id, whatsapp_id, landline_number_id');
  }
}

function getContact(ctx: Ctx): Reply {
  const c = resolveContact(ctx);
  if (!c) throw notFound('Contact does not exist');
  return { status: 200, body: { ...contactDetails(c), statistics: {} } };
}

/**
 * `modifiedSince` (GET /v3/contacts and a list's contacts): only contacts modified at or after
 * that time, as Brevo filters them; an unparsable value is a 400.
 */
function modifiedSince(query: URLSearchParams): (c: ContactRec) => boolean {
  const raw = query.get('modifiedSince');
  if (raw === null) return () => true;
  const since = Date.parse(raw);
  if (Number.isNaN(since)) throw bad('modifiedSince must be a date-time (YYYY-MM-DDTHH:mm:ss.SSSZ)');
  return (c) => Date.parse(c.modifiedAt) >= since;
}

function listContacts(ctx: Ctx): Reply {
  const p = page(ctx.query, 50, 1000);
  const { items, count } = slice([...ctx.store.contacts.values()].filter(modifiedSince(ctx.query)), p);
  return { status: 200, body: { contacts: items.map((c) => contactDetails(c)), count } };
}

function createContact(ctx: Ctx): Reply {
  const { store } = ctx;
  const b = bodyObject(ctx.body);
  const email = b.email;
  if (email === undefined) throw missing('email is missing (the simulator keys contacts by email)');
  if (!isValidEmail(email)) throw bad('Invalid email address');
  const attributes = optObject(b, 'attributes');
  const emailBlacklisted = optBool(b, 'emailBlacklisted');
  const smsBlacklisted = optBool(b, 'smsBlacklisted');
  const listIds = optIntArray(b, 'listIds');
  const updateEnabled = optBool(b, 'updateEnabled') ?? false;
  const extId = optString(b, 'ext_id');
  checkListsExist(store, listIds, 'listIds');

  const existing = store.findContact(email);
  if (existing && !updateEnabled) throw new ApiError(400, 'duplicate_parameter', 'Contact already exist');
  const c = existing ?? store.createContact(email);
  const source = 'POST /v3/contacts';
  if (attributes) store.applyAttributes(c, attributes, 'clear', source);
  if (emailBlacklisted !== undefined) store.setEmailBlacklisted(c, emailBlacklisted, source);
  if (smsBlacklisted !== undefined) c.smsBlacklisted = smsBlacklisted;
  if (extId !== undefined) c.extId = extId;
  for (const id of listIds ?? []) store.addToList(c, id);
  store.touch(c);
  return existing ? { status: 204 } : { status: 201, body: { id: c.id } };
}

function updateContact(ctx: Ctx): Reply {
  const { store } = ctx;
  const c = resolveContact(ctx);
  if (!c) throw notFound('Contact does not exist');
  const b = bodyObject(ctx.body);
  const attributes = optObject(b, 'attributes');
  const emailBlacklisted = optBool(b, 'emailBlacklisted');
  const smsBlacklisted = optBool(b, 'smsBlacklisted');
  const listIds = optIntArray(b, 'listIds');
  const unlinkListIds = optIntArray(b, 'unlinkListIds');
  const extId = optString(b, 'ext_id');
  checkListsExist(store, listIds, 'listIds');
  checkListsExist(store, unlinkListIds, 'unlinkListIds');

  const source = 'PUT /v3/contacts';
  const emailKey = attributes ? Object.keys(attributes).find((k) => k.toUpperCase() === 'EMAIL') : undefined;
  if (attributes && emailKey !== undefined) {
    const newEmail = attributes[emailKey];
    if (!isValidEmail(newEmail)) throw bad('Invalid email address in attributes.EMAIL');
    const other = store.findContact(newEmail);
    if (other && other !== c) throw new ApiError(400, 'duplicate_parameter', 'Contact already exist with this email');
    // Brevo: updating a blocklisted contact's email lifts the blocklisting.
    store.changeEmail(c, newEmail, source);
  }
  if (attributes) store.applyAttributes(c, attributes, 'clear', source);
  // Brevo applies `emailBlacklisted: false` literally: the contact is unblocked.
  if (emailBlacklisted !== undefined) store.setEmailBlacklisted(c, emailBlacklisted, source);
  if (smsBlacklisted !== undefined) c.smsBlacklisted = smsBlacklisted;
  if (extId !== undefined) c.extId = extId;
  for (const id of listIds ?? []) store.addToList(c, id);
  for (const id of unlinkListIds ?? []) store.removeFromList(c, id);
  store.touch(c);
  return { status: 204 };
}

// ---------------------------------------------------------------------------------------
// Attributes

const CATEGORIES = new Set(['normal', 'transactional', 'category', 'calculated', 'global']);
const TYPES_BY_CATEGORY: Record<string, Set<string>> = {
  normal: new Set(['text', 'date', 'float', 'boolean', 'multiple-choice', 'user']),
  transactional: new Set(['text', 'date', 'float', 'boolean', 'id']),
  category: new Set(['category']),
};

function listAttributes(ctx: Ctx): Reply {
  const attributes = [...ctx.store.attributes.values()].map((a) => {
    const v: Obj = { name: a.name, category: a.category, type: a.type };
    if (a.enumeration) v.enumeration = a.enumeration.map((e) => ({ ...e, valueStr: String(e.value) }));
    return v;
  });
  return { status: 200, body: { attributes } };
}

function createAttribute(ctx: Ctx): Reply {
  const { store } = ctx;
  const category = decodeParam(ctx.params[0]);
  const rawName = decodeParam(ctx.params[1]);
  if (!CATEGORIES.has(category)) throw bad('attributeCategory must be one of normal, transactional, category, calculated, global');
  if (!/^[A-Za-z][A-Za-z0-9_]*$/.test(rawName)) throw bad('attributeName may contain only letters, digits and underscores and must start with a letter');
  const name = rawName.toUpperCase();
  if (store.attributes.has(name)) throw new ApiError(400, 'duplicate_parameter', 'Attribute name must be unique');
  const b = bodyObject(ctx.body);
  const allowed = TYPES_BY_CATEGORY[category];
  let type = optString(b, 'type');
  const def: AttributeRec = { category, name, type: '' };
  if (allowed) {
    type ??= category === 'category' ? 'category' : 'text';
    if (!allowed.has(type)) throw bad(`type ${type} is not allowed for category ${category} (allowed: ${[...allowed].join(', ')})`);
    def.type = type;
    if (category === 'category') {
      const e = b.enumeration;
      if (!Array.isArray(e) || e.length === 0) throw missing('enumeration is mandatory for category attributes');
      def.enumeration = e.map((x) => {
        if (!isObj(x) || typeof x.value !== 'number' || !Number.isInteger(x.value) || typeof x.label !== 'string')
          throw bad('enumeration items must be {value: integer, label: string}');
        return { value: x.value, label: x.label };
      });
    }
  } else {
    // calculated and global attributes carry a formula, not a type.
    if (optString(b, 'value') === undefined) throw missing('value is mandatory for calculated and global attributes');
    def.type = type ?? 'float';
  }
  store.attributes.set(name, def);
  // Brevo documents an empty response body for 201 here.
  return { status: 201 };
}

// ---------------------------------------------------------------------------------------
// Folders and lists

function requireName(b: Obj, key: string): string {
  const v = b[key];
  if (v === undefined) throw missing(`${key} is missing`);
  if (typeof v !== 'string' || v.trim() === '') throw bad(`${key} must be a non-empty string`);
  return v;
}

function listFolders(ctx: Ctx): Reply {
  const { items, count } = slice(ctx.store.folders.values(), page(ctx.query, 10, 50));
  return { status: 200, body: { folders: items.map((f) => folderView(ctx.store, f.id, f.name)), count } };
}

function createFolder(ctx: Ctx): Reply {
  const name = requireName(bodyObject(ctx.body), 'name');
  return { status: 201, body: { id: ctx.store.createFolder(name).id } };
}

function getFolder(ctx: Ctx): Reply {
  const f = ctx.store.folders.get(intParam(ctx.params[0], 'folderId'));
  if (!f) throw notFound('Folder ID not found');
  return { status: 200, body: folderView(ctx.store, f.id, f.name) };
}

function listView(ctx: Ctx, l: { id: number; name: string; folderId: number; members: Set<number> }): Obj {
  return { id: l.id, name: l.name, folderId: l.folderId, ...listCounts(ctx.store, l.members) };
}

function getFolderLists(ctx: Ctx): Reply {
  const folderId = intParam(ctx.params[0], 'folderId');
  if (!ctx.store.folders.has(folderId)) throw notFound('Folder ID not found');
  const inFolder = [...ctx.store.lists.values()].filter((l) => l.folderId === folderId);
  const { items, count } = slice(inFolder, page(ctx.query, 10, 50));
  return { status: 200, body: { lists: items.map((l) => listView(ctx, l)), count } };
}

function listLists(ctx: Ctx): Reply {
  const { items, count } = slice(ctx.store.lists.values(), page(ctx.query, 10, 50));
  return { status: 200, body: { lists: items.map((l) => listView(ctx, l)), count } };
}

function createList(ctx: Ctx): Reply {
  const b = bodyObject(ctx.body);
  const name = requireName(b, 'name');
  const folderId = b.folderId;
  if (folderId === undefined) throw missing('folderId is missing');
  if (typeof folderId !== 'number' || !Number.isInteger(folderId)) throw bad('folderId must be an integer');
  if (!ctx.store.folders.has(folderId)) throw bad(`Folder ID ${folderId} not found`);
  return { status: 201, body: { id: ctx.store.createList(name, folderId).id } };
}

function getList(ctx: Ctx): Reply {
  const l = ctx.store.lists.get(intParam(ctx.params[0], 'listId'));
  if (!l) throw notFound('List ID not found');
  return { status: 200, body: { ...listView(ctx, l), createdAt: l.createdAt, dynamicList: false, campaignStats: [] } };
}

function getListContacts(ctx: Ctx): Reply {
  const l = ctx.store.lists.get(intParam(ctx.params[0], 'listId'));
  if (!l) throw notFound('List ID not found');
  const since = modifiedSince(ctx.query);
  const members = [...l.members].map((id) => ctx.store.contactsById.get(id)).filter((c): c is ContactRec => c !== undefined && since(c));
  const { items, count } = slice(members, page(ctx.query, 50, 500));
  return { status: 200, body: { contacts: items.map((c) => contactDetails(c)), count } };
}

// Brevo takes at most 150 emails (or ids) per add/remove call (its SDK docs for
// AddContactToList / RemoveContactFromList) and points bulk work to /contacts/import.
const MAX_LIST_MEMBERS_PER_CALL = 150;

function memberTargets(ctx: Ctx, b: Obj): { keys: Array<string | number>; contacts: Array<ContactRec | undefined> } {
  const { store } = ctx;
  const given = ['emails', 'ids', 'extIds'].filter((k) => b[k] !== undefined);
  if (given.length === 0) throw missing('one of emails, ids or extIds is mandatory');
  if (given.length > 1) throw bad('pass only one of emails, ids or extIds');
  const key = given[0] as string;
  const arr = b[key];
  if (!Array.isArray(arr) || arr.length === 0) throw bad(`${key} must be a non-empty array`);
  if (arr.length > MAX_LIST_MEMBERS_PER_CALL) throw bad(`${key}: at most ${MAX_LIST_MEMBERS_PER_CALL} per request; use /contacts/import for bulk`);
  if (key === 'ids') {
    if (!arr.every((x) => typeof x === 'number' && Number.isInteger(x))) throw bad('ids must be integers');
    return { keys: arr as number[], contacts: (arr as number[]).map((id) => store.contactsById.get(id)) };
  }
  if (!arr.every((x) => typeof x === 'string')) throw bad(`${key} must be strings`);
  const strs = arr as string[];
  if (key === 'emails') return { keys: strs, contacts: strs.map((e) => store.findContact(e)) };
  return { keys: strs, contacts: strs.map((x) => [...store.contacts.values()].find((c) => c.extId === x)) };
}

function addToList(ctx: Ctx): Reply {
  const listId = intParam(ctx.params[0], 'listId');
  if (!ctx.store.lists.has(listId)) throw notFound('List ID not found');
  const { keys, contacts } = memberTargets(ctx, bodyObject(ctx.body));
  const success: Array<string | number> = [];
  const failure: Array<string | number> = [];
  contacts.forEach((c, i) => {
    const k = keys[i] as string | number;
    if (c && ctx.store.addToList(c, listId)) {
      ctx.store.touch(c);
      success.push(k);
    } else failure.push(k);
  });
  // Brevo fails the whole call when nothing could be added, which a retried call (all
  // contacts already in the list) hits too: a client must treat that as done.
  if (success.length === 0) throw bad('Contact already in list and/or does not exist');
  return { status: 201, body: { contacts: { success, failure } } };
}

function removeFromList(ctx: Ctx): Reply {
  const listId = intParam(ctx.params[0], 'listId');
  if (!ctx.store.lists.has(listId)) throw notFound('List ID not found');
  const b = bodyObject(ctx.body);
  if (b.all !== undefined) throw bad('all=true is not supported by the simulator');
  const { keys, contacts } = memberTargets(ctx, b);
  const success: Array<string | number> = [];
  const failure: Array<string | number> = [];
  contacts.forEach((c, i) => {
    const k = keys[i] as string | number;
    if (c && ctx.store.removeFromList(c, listId)) {
      ctx.store.touch(c);
      success.push(k);
    } else failure.push(k);
  });
  // Assumed symmetric with add: nothing removed is a 400.
  if (success.length === 0) throw bad('Contact not in list and/or does not exist');
  return { status: 201, body: { contacts: { success, failure } } };
}

// ---------------------------------------------------------------------------------------
// Import (asynchronous; applied by the server after importDelayMs)

function importContacts(ctx: Ctx): Reply {
  const { store } = ctx;
  const b = bodyObject(ctx.body);
  if (b.fileUrl !== undefined || b.fileBody !== undefined) throw bad('the simulator supports jsonBody imports only');
  const rows = b.jsonBody;
  if (rows === undefined) throw missing('jsonBody is mandatory if fileUrl and fileBody are not defined');
  if (!Array.isArray(rows) || rows.length === 0) throw bad('jsonBody must be a non-empty array of {email, attributes}');
  const listIds = optIntArray(b, 'listIds') ?? [];
  const newList = optObject(b, 'newList');
  if (listIds.length === 0 && !newList) throw missing('listIds is mandatory if newList is not defined');
  checkListsExist(store, listIds, 'listIds');
  let newListName: string | undefined;
  let newListFolder: number | undefined;
  if (newList) {
    newListName = requireName(newList, 'listName');
    const f = newList.folderId;
    if (f !== undefined) {
      if (typeof f !== 'number' || !store.folders.has(f)) throw bad('newList.folderId does not exist');
      newListFolder = f;
    }
  }
  const updateExisting = optBool(b, 'updateExistingContacts') ?? true;
  const emptyErases = optBool(b, 'emptyContactsAttributes') ?? false;
  const emailBlacklist = optBool(b, 'emailBlacklist') ?? false;
  const smsBlacklist = optBool(b, 'smsBlacklist') ?? false;
  optBool(b, 'disableNotification');
  const notifyUrl = optString(b, 'notifyUrl');

  const p = store.createProcess('IMPORTUSER', notifyUrl);
  ctx.scheduleImport(p, () => {
    const targetLists = [...listIds];
    if (newListName !== undefined) {
      const folderId = newListFolder ?? store.folders.keys().next().value ?? store.createFolder('Imports').id;
      targetLists.push(store.createList(newListName, folderId).id);
    }
    const seen = new Set<string>();
    for (const row of rows as unknown[]) {
      const email = isObj(row) ? row.email : undefined;
      const shown = typeof email === 'string' ? email : '';
      if (!isValidEmail(email)) {
        p.invalid.push({ email: shown, reason: isObj(row) ? 'invalid email address' : 'row is not an object' });
        continue;
      }
      const key = email.trim().toLowerCase();
      if (seen.has(key)) {
        p.duplicates.push({ email: shown, reason: 'duplicate email in this import (first row applied)' });
        continue;
      }
      seen.add(key);
      const existing = store.findContact(key);
      const c = existing ?? store.createContact(key);
      const attrs = isObj(row) ? row.attributes : undefined;
      // Assumed: updateExistingContacts=false leaves an existing contact's attributes alone
      // but still files it in the import's lists and blocklist.
      if (attrs !== undefined && (!existing || updateExisting)) {
        if (isObj(attrs)) store.applyAttributes(c, attrs, emptyErases ? 'clear' : 'ignore', 'POST /v3/contacts/import');
        else store.drop(key, 'attributes', attrs, 'attributes must be an object', 'POST /v3/contacts/import');
      }
      // emailBlacklist=true blocklists every contact of the import; false changes nothing.
      if (emailBlacklist) store.setEmailBlacklisted(c, true, 'POST /v3/contacts/import');
      if (smsBlacklist) c.smsBlacklisted = true;
      for (const id of targetLists) store.addToList(c, id);
      store.touch(c);
    }
  });
  return { status: 202, body: { processId: p.id } };
}

// ---------------------------------------------------------------------------------------
// Processes

function listProcesses(ctx: Ctx): Reply {
  const { items, count } = slice(ctx.store.processes.values(), page(ctx.query, 10, 50));
  return { status: 200, body: { processes: items.map((p) => processView(ctx, p)), count } };
}

function getProcess(ctx: Ctx): Reply {
  const p = ctx.store.processes.get(intParam(ctx.params[0], 'processId'));
  if (!p) throw notFound('Process does not exist');
  return { status: 200, body: processView(ctx, p) };
}

// ---------------------------------------------------------------------------------------
// Events

// Brevo: event_name up to 255 characters of letters, digits, '-' and '_'; the same rule for
// event_properties keys; event_properties up to 50 KB (reference/create-event).
const EVENT_NAME_RE = /^[A-Za-z0-9_-]{1,255}$/;
const IDENTIFIER_KEYS = new Set(['contact_id', 'email_id', 'ext_id', 'landline_number_id', 'phone_id', 'whatsapp_id']);
const RFC3339_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
const MAX_EVENT_PROPERTIES_BYTES = 50 * 1024;
// Taken from the design notes: not confirmed in Brevo's public reference.
export const MAX_BATCH_EVENTS = 200;

function checkPropertyKeys(v: unknown, path: string): string | null {
  if (Array.isArray(v)) {
    for (const [i, x] of v.entries()) {
      const e = checkPropertyKeys(x, `${path}[${i}]`);
      if (e) return e;
    }
  } else if (isObj(v)) {
    for (const [k, x] of Object.entries(v)) {
      if (!EVENT_NAME_RE.test(k)) return `${path}: key '${k}' must be 1-255 letters, digits, '-' or '_'`;
      const e = checkPropertyKeys(x, `${path}.${k}`);
      if (e) return e;
    }
  }
  return null;
}

interface ValidEvent {
  event: SimEvent;
  contactId?: number;
  email?: string;
}

/** Validates one event; returns the error message or the normalized event. */
function validateEvent(store: SimStore, raw: unknown): { error: ApiError } | ValidEvent {
  if (!isObj(raw)) return { error: bad('an event must be a JSON object') };
  const name = raw.event_name;
  if (name === undefined) return { error: missing('event_name is missing') };
  if (typeof name !== 'string' || !EVENT_NAME_RE.test(name)) return { error: bad("event_name must be 1-255 letters, digits, '-' or '_'") };
  const ids = raw.identifiers;
  if (ids === undefined) return { error: missing('identifiers is missing') };
  if (!isObj(ids)) return { error: bad('identifiers must be an object') };
  const keys = Object.keys(ids);
  if (keys.length === 0) return { error: missing('identifiers: at least one identifier is required') };
  const identifiers: Record<string, string> = {};
  let contactId: number | undefined;
  for (const k of keys) {
    const v = ids[k];
    if (!IDENTIFIER_KEYS.has(k)) return { error: bad(`identifiers.${k} is not a known identifier`) };
    if (k === 'contact_id') {
      if (typeof v !== 'number' || !Number.isInteger(v)) return { error: bad('identifiers.contact_id must be an integer') };
      if (!store.contactsById.has(v)) return { error: notFound(`identifiers.contact_id ${v} does not exist`) };
      contactId = v;
      identifiers[k] = String(v);
      continue;
    }
    if (typeof v !== 'string' || v === '') return { error: bad(`identifiers.${k} must be a non-empty string`) };
    if (k === 'email_id' && !isValidEmail(v.trim())) return { error: bad('identifiers.email_id is not a valid email address') };
    identifiers[k] = v;
  }
  const event: SimEvent = { event_name: name, identifiers, receivedAt: store.iso() };
  const date = raw.event_date;
  if (date !== undefined) {
    if (typeof date !== 'string' || !RFC3339_RE.test(date) || Number.isNaN(Date.parse(date)))
      return { error: bad('event_date must be an ISO-8601 timestamp such as 2024-01-24T17:39:57+01:00') };
    event.event_date = date;
  }
  const cp = raw.contact_properties;
  if (cp !== undefined) {
    if (!isObj(cp)) return { error: bad('contact_properties must be an object') };
    for (const [k, v] of Object.entries(cp)) {
      if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean')
        return { error: bad(`contact_properties.${k} must be a string, number or boolean`) };
    }
    // The body was parsed for this request only, so it can be kept without a copy.
    event.contact_properties = cp;
  }
  const ep = raw.event_properties;
  if (ep !== undefined) {
    if (!isObj(ep)) return { error: bad('event_properties must be an object') };
    for (const [k, v] of Object.entries(ep)) {
      if (v === null) return { error: bad(`event_properties.${k} is null; omit a property instead`) };
    }
    const keyError = checkPropertyKeys(ep, 'event_properties');
    if (keyError) return { error: bad(keyError) };
    if (Buffer.byteLength(JSON.stringify(ep)) > MAX_EVENT_PROPERTIES_BYTES) return { error: bad('event_properties exceed 50 KB') };
    event.event_properties = ep;
  }
  const out: ValidEvent = { event };
  if (contactId !== undefined) out.contactId = contactId;
  if (identifiers.email_id !== undefined) out.email = identifiers.email_id;
  return out;
}

// Brevo's reference does not say what happens to an unknown email; the simulator creates the
// contact (as Brevo's tracker does for identified visitors) so contact_properties land.
function applyEvent(store: SimStore, v: ValidEvent): void {
  let c: ContactRec | undefined;
  if (v.contactId !== undefined) c = store.contactsById.get(v.contactId);
  else if (v.email !== undefined) c = store.findContact(v.email) ?? store.createContact(v.email);
  if (c && v.event.contact_properties) {
    store.applyAttributes(c, v.event.contact_properties, 'clear', 'POST /v3/events');
    store.touch(c);
  }
  store.events.push(v.event);
  if (c) store.eventContact.set(v.event, c.id);
}

// GET /v3/events (reference/get-events: custom events only): filtered by contact_id and
// event_name (both repeatable) and an event_date range, newest first, limit 1..10000.
function listEvents(ctx: Ctx): Reply {
  const { store, query } = ctx;
  const ids = query.getAll('contact_id').map(Number);
  if (ids.some((n) => !Number.isInteger(n))) throw bad('contact_id must be an integer');
  const names = query.getAll('event_name');
  const start = query.get('startDate');
  const end = query.get('endDate');
  if ((start === null) !== (end === null)) throw bad('startDate and endDate go together');
  const from = start === null ? -Infinity : Date.parse(start);
  const to = end === null ? Infinity : Date.parse(end.length === 10 ? `${end}T23:59:59.999Z` : end);
  if (Number.isNaN(from) || Number.isNaN(to) || from > to) throw bad('startDate and endDate must be dates (YYYY-MM-DD or RFC3339), startDate <= endDate');
  const limit = query.get('limit') === null ? 100 : Number(query.get('limit'));
  const offset = query.get('offset') === null ? 0 : Number(query.get('offset'));
  if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw bad('limit must be an integer between 1 and 10000');
  if (!Number.isInteger(offset) || offset < 0) throw bad('offset must be a non-negative integer');
  const dateOf = (e: SimEvent) => Date.parse(e.event_date ?? e.receivedAt);
  const found = store.events.filter((e) => {
    const cid = store.eventContact.get(e);
    if (ids.length > 0 && (cid === undefined || !ids.includes(cid))) return false;
    if (names.length > 0 && !names.includes(e.event_name)) return false;
    const at = dateOf(e);
    return at >= from && at <= to;
  });
  found.sort((a, b) => dateOf(b) - dateOf(a));
  return {
    status: 200,
    body: {
      events: found.slice(offset, offset + limit).map((e) => ({
        contact_id: store.eventContact.get(e),
        event_date: e.event_date ?? e.receivedAt,
        event_name: e.event_name,
        ...(e.event_properties ? { event_properties: e.event_properties } : {}),
        ...(e.contact_properties ? { contact_properties: e.contact_properties } : {}),
      })),
      count: found.length,
    },
  };
}

function createEvent(ctx: Ctx): Reply {
  const v = validateEvent(ctx.store, ctx.body);
  if ('error' in v) throw v.error;
  applyEvent(ctx.store, v);
  return { status: 204 };
}

// POST /v3/events/batch takes {events: [...]} (reference/create-batch-events; older SDKs sent
// a bare array, which current Brevo documents no longer). All valid: 202 {message, count};
// some invalid: 207 with per-index errors, the valid ones applied; none valid: 400 with the
// same breakdown (batchEventsResponse, which carries no `code`).
function createBatchEvents(ctx: Ctx): Reply {
  if (Array.isArray(ctx.body)) throw bad('the body must be an object {events: [...]}, not a bare array');
  const b = bodyObject(ctx.body);
  const events = b.events;
  if (events === undefined) throw missing('events is missing');
  if (!Array.isArray(events) || events.length === 0) throw bad('events must be a non-empty array');
  if (events.length > MAX_BATCH_EVENTS) throw bad(`events: at most ${MAX_BATCH_EVENTS} events per batch`);
  const valid: ValidEvent[] = [];
  const errors = new Map<string, number[]>();
  events.forEach((raw, i) => {
    const v = validateEvent(ctx.store, raw);
    if ('error' in v) {
      const idx = errors.get(v.error.message) ?? [];
      idx.push(i);
      errors.set(v.error.message, idx);
    } else valid.push(v);
  });
  for (const v of valid) applyEvent(ctx.store, v);
  if (errors.size === 0) return { status: 202, body: { message: 'Batch accepted', count: valid.length } };
  const body = {
    status: valid.length === 0 ? 'failed' : 'partial_success',
    total_events: events.length,
    successful_events: valid.length,
    failed_events: events.length - valid.length,
    errors: [...errors].map(([message, eventIndex]) => ({ eventIndex, message })),
  };
  return { status: valid.length === 0 ? 400 : 207, body };
}

// ---------------------------------------------------------------------------------------
// Account

function getAccount(): Reply {
  return {
    status: 200,
    body: {
      email: 'sim@brevo-sim.invalid',
      firstName: 'Brevo',
      lastName: 'Simulator',
      companyName: 'Brevo Simulator',
      address: { street: '', city: '', zipCode: '', country: '' },
      plan: [{ type: 'free', creditsType: 'sendLimit', credits: 300 }],
      relay: { enabled: false, data: { userName: 'sim@brevo-sim.invalid', relay: 'smtp-relay.brevo-sim.invalid', port: 587 } },
    },
  };
}

// ---------------------------------------------------------------------------------------

const P = '([^/]+)';
const r = (method: string, key: string, handler: (ctx: Ctx) => Reply, extra: Partial<Route> = {}): Route => ({
  method,
  key: `${method} ${key}`,
  pattern: new RegExp('^' + key.replace(/:[a-zA-Z]+/g, P) + '$'),
  handler,
  ...extra,
});

// Specific paths before /v3/contacts/:identifier, which would otherwise swallow them.
export const ROUTES: Route[] = [
  r('GET', '/v3/account', getAccount),
  r('GET', '/v3/contacts', listContacts),
  r('POST', '/v3/contacts', createContact),
  r('POST', '/v3/contacts/import', importContacts, { isImport: true }),
  r('GET', '/v3/contacts/attributes', listAttributes),
  r('POST', '/v3/contacts/attributes/:category/:name', createAttribute),
  r('GET', '/v3/contacts/folders', listFolders),
  r('POST', '/v3/contacts/folders', createFolder),
  r('GET', '/v3/contacts/folders/:folderId', getFolder),
  r('GET', '/v3/contacts/folders/:folderId/lists', getFolderLists),
  r('GET', '/v3/contacts/lists', listLists),
  r('POST', '/v3/contacts/lists', createList),
  r('GET', '/v3/contacts/lists/:listId', getList),
  r('GET', '/v3/contacts/lists/:listId/contacts', getListContacts),
  r('POST', '/v3/contacts/lists/:listId/contacts/add', addToList),
  r('POST', '/v3/contacts/lists/:listId/contacts/remove', removeFromList),
  r('GET', '/v3/contacts/:identifier', getContact),
  r('PUT', '/v3/contacts/:identifier', updateContact),
  r('GET', '/v3/events', listEvents),
  r('POST', '/v3/events', createEvent),
  r('POST', '/v3/events/batch', createBatchEvents),
  r('GET', '/v3/processes', listProcesses),
  r('GET', '/v3/processes/:processId', getProcess),
];

export type RouteMatch = { route: Route; params: string[] } | { methodNotAllowed: true } | null;

export function matchRoute(method: string, path: string): RouteMatch {
  let pathMatched = false;
  for (const route of ROUTES) {
    const m = route.pattern.exec(path);
    if (!m) continue;
    if (route.method === method) return { route, params: m.slice(1) as string[] };
    pathMatched = true;
  }
  return pathMatched ? { methodNotAllowed: true } : null;
}

/** CSV body of a completed import's report file (served under /sim/processes/{id}/{file}.csv). */
export function reportCsv(store: SimStore, processId: number, file: string): string | undefined {
  const p = store.processes.get(processId);
  if (!p || p.status !== 'completed') return undefined;
  const rows = file === 'invalid_emails' ? p.invalid : file === 'duplicate_email_id' ? p.duplicates : undefined;
  if (!rows) return undefined;
  return ['EMAIL;REASON', ...rows.map((x) => `${x.email};${x.reason}`)].join('\n') + '\n';
}
