// Brevo lists that mirror SES: a folder (lists.folder), one list per SES contact list and
// one per topic. Lists are found again by name on later runs, so they are never duplicated;
// the ids are cached in the store. Brevo allows two folders (or lists) of one name, so the
// processes of a cluster make them one at a time, under a store lease.
import type { BrevoClient } from '../brevo/client.js';
import type { Store } from '../store/port.js';
import type { SesContactList } from '../ses/streams.js';
import { topicListName } from '../core/plan.js';
import { isOwnerGone, makeOwnerId } from './owner.js';

/** Extra lists the connector keeps in the folder: Brevo's import needs a list for every row. */
export const SUPPRESSION_LIST = 'SES suppression list';
export const RECIPIENTS_LIST = 'SES recipients';

export { topicListName };

export interface ListMap {
  folderId: number;
  lists: Record<string, number>;
}

const PAGE = 50;

/** The store lease under which a process looks for, and creates, the folder or a list. */
export const LISTS_LEASE = 'brevo:lists';
/** Long enough for a few Brevo calls at the pace of the `contacts` budget; a dead holder on another host is waited out. */
const LISTS_LEASE_MS = 30_000;
const LISTS_LEASE_RETRY_MS = 100;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class BrevoLists {
  private cache: ListMap | undefined;
  private loading: Promise<ListMap> | undefined;
  private inflight = new Map<string, Promise<number>>();
  /** This process's turns under the lease, one after the other (the lease is the owner's, not a caller's). */
  private turns: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly client: BrevoClient,
    private readonly store: Store,
    private readonly folderName: string,
    private readonly now: () => number = Date.now,
    private readonly owner: string = makeOwnerId(),
  ) {}

  private load(): Promise<ListMap> {
    if (this.cache) return Promise.resolve(this.cache);
    this.loading ??= this.loadOnce().finally(() => (this.loading = undefined));
    return this.loading;
  }

  private async loadOnce(): Promise<ListMap> {
    const saved = await this.saved();
    if (saved) return (this.cache = saved);
    return this.exclusive(async () => {
      // Another process may have found or made the folder while this one waited for the lease.
      const again = await this.saved();
      if (again) return (this.cache = again);
      const folderId = await this.findOrCreateFolder();
      const lists: Record<string, number> = {};
      for (let offset = 0; ; offset += PAGE) {
        const { data } = await this.client.listFolderLists(folderId, PAGE, offset);
        for (const l of data?.lists ?? []) if (!(l.name in lists)) lists[l.name] = l.id;
        if ((data?.lists ?? []).length < PAGE) break;
      }
      this.cache = { folderId, lists };
      await this.save();
      return this.cache;
    });
  }

  /** The folder and lists as the store has them (saved by any process), for this folder name. */
  private async saved(): Promise<ListMap | undefined> {
    const saved = await this.store.getState('brevo:lists');
    if (!saved) return undefined;
    const m = JSON.parse(saved) as ListMap & { folder?: string };
    return m.folder === this.folderName ? { folderId: m.folderId, lists: m.lists } : undefined;
  }

  /**
   * Runs `fn` while this process holds the lists lease: of the processes sharing a store, one
   * at a time looks for a folder or list and creates it when missing.
   */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const turn = this.turns.then(async () => {
      for (;;) {
        const r = await this.store.tryLease({ name: LISTS_LEASE, owner: this.owner, ttlMs: LISTS_LEASE_MS });
        if (r.acquired) break;
        // A holder that died on this host (SIGKILL) is not waited out.
        if (isOwnerGone(r.holder)) await this.store.releaseLease({ name: LISTS_LEASE, owner: r.holder });
        else await sleep(LISTS_LEASE_RETRY_MS);
      }
      try {
        return await fn();
      } finally {
        await this.store.releaseLease({ name: LISTS_LEASE, owner: this.owner }).catch(() => undefined);
      }
    });
    this.turns = turn.catch(() => undefined);
    return turn;
  }

  private async save(): Promise<void> {
    if (this.cache) await this.store.setState('brevo:lists', JSON.stringify({ folder: this.folderName, ...this.cache }), this.now());
  }

  private async findInFolder(folderId: number, name: string): Promise<number | undefined> {
    for (let offset = 0; ; offset += PAGE) {
      const { data } = await this.client.listFolderLists(folderId, PAGE, offset);
      const hit = (data?.lists ?? []).find((l) => l.name === name);
      if (hit) return hit.id;
      if ((data?.lists ?? []).length < PAGE) return undefined;
    }
  }

  private async findOrCreateFolder(): Promise<number> {
    for (let offset = 0; ; offset += PAGE) {
      const { data } = await this.client.listFolders(PAGE, offset);
      const found = (data?.folders ?? []).find((f) => f.name === this.folderName);
      if (found) return found.id;
      if ((data?.folders ?? []).length < PAGE) break;
    }
    const { data } = await this.client.createFolder(this.folderName);
    return data.id;
  }

  /**
   * Id of the list with this name as this process knows it (created by it, or found in the folder
   * when the cache was loaded), without creating it: a contact cannot be removed from a list that
   * was never made. A list another process created since stays unknown here until reset().
   */
  async find(name: string): Promise<number | undefined> {
    return (await this.load()).lists[name];
  }

  /** Every list of the folder this process knows, by name (a copy). */
  async known(): Promise<Record<string, number>> {
    return { ...(await this.load()).lists };
  }

  /** Id of the list with this name in the folder, created when missing. */
  async ensure(name: string): Promise<number> {
    const m = await this.load();
    const known = m.lists[name];
    if (known !== undefined) return known;
    // Two callers asking for the same new list must not create it twice.
    let p = this.inflight.get(name);
    if (!p) {
      p = this.exclusive(async () => {
        // Another process may have made it meanwhile (and saved its id): keep what it saved.
        const saved = await this.saved();
        if (saved?.folderId === m.folderId) for (const [n, id] of Object.entries(saved.lists)) if (!(n in m.lists)) m.lists[n] = id;
        const known = m.lists[name];
        if (known !== undefined) return known;
        // A create whose answer was lost, or a process killed before saving the id, left the
        // list in Brevo: look at the folder again before creating anything.
        const found = await this.findInFolder(m.folderId, name);
        const id = found ?? (await this.client.createList(name, m.folderId)).data.id;
        m.lists[name] = id;
        await this.save();
        return id;
      }).finally(() => this.inflight.delete(name));
      this.inflight.set(name, p);
    }
    return p;
  }

  /**
   * The list ids an SES contact belongs to: its list, and each topic it is opted in to.
   * UnsubscribeAll overrides every topic preference, as it does when SES sends.
   */
  async idsFor(list: SesContactList, topics: Record<string, 'OPT_IN' | 'OPT_OUT'>, unsubscribeAll = false): Promise<number[]> {
    const ids = [await this.ensure(list.name)];
    if (unsubscribeAll) return ids;
    for (const t of list.topics) if (topics[t.name] === 'OPT_IN') ids.push(await this.ensure(topicListName(list.name, t.name)));
    return ids;
  }

  async ensureAll(lists: SesContactList[]): Promise<void> {
    for (const l of lists) {
      await this.ensure(l.name);
      for (const t of l.topics) await this.ensure(topicListName(l.name, t.name));
    }
  }

  /** Forget the cache (a list was deleted in Brevo). */
  async reset(): Promise<void> {
    this.cache = undefined;
    await this.store.setState('brevo:lists', '', this.now());
  }
}
