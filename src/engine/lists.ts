// Brevo lists that mirror SES: a folder (lists.folder), one list per SES contact list and
// one per topic. Lists are found again by name on later runs, so they are never duplicated;
// the ids are cached in the store.
import type { BrevoClient } from '../brevo/client.js';
import type { Store } from '../store/port.js';
import type { SesContactList } from '../ses/streams.js';
import { topicListName } from '../core/plan.js';

/** Extra lists the connector keeps in the folder: Brevo's import needs a list for every row. */
export const SUPPRESSION_LIST = 'SES suppression list';
export const RECIPIENTS_LIST = 'SES recipients';

export { topicListName };

export interface ListMap {
  folderId: number;
  lists: Record<string, number>;
}

const PAGE = 50;

export class BrevoLists {
  private cache: ListMap | undefined;
  private inflight = new Map<string, Promise<number>>();

  constructor(
    private readonly client: BrevoClient,
    private readonly store: Store,
    private readonly folderName: string,
    private readonly now: () => number = Date.now,
  ) {}

  private async load(): Promise<ListMap> {
    if (this.cache) return this.cache;
    const saved = await this.store.getState('brevo:lists');
    if (saved) {
      const m = JSON.parse(saved) as ListMap & { folder?: string };
      if (m.folder === this.folderName) return (this.cache = { folderId: m.folderId, lists: m.lists });
    }
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
      p = (async () => {
        // A create whose answer was lost, or a process killed before saving the id, left the
        // list in Brevo: look at the folder again before creating anything.
        const found = await this.findInFolder(m.folderId, name);
        const id = found ?? (await this.client.createList(name, m.folderId)).data.id;
        m.lists[name] = id;
        await this.save();
        return id;
      })().finally(() => this.inflight.delete(name));
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
