// Row -> port shapes, shared by the SQL adapters (their column names are the same).
import type { OpRow } from './port.js';

export type Row = Record<string, unknown>;

export function toOp(r: Row): OpRow {
  return {
    id: Number(r.id),
    kind: r.kind as OpRow['kind'],
    key: String(r.key),
    email: String(r.email),
    lane: r.lane as OpRow['lane'],
    priority: Number(r.priority),
    payload: JSON.parse(String(r.payload)),
    sources: JSON.parse(String(r.sources)) as string[],
    state: r.state as OpRow['state'],
    attempts: Number(r.attempts),
    nextAt: Number(r.next_at),
    ref: (r.ref as string | null) ?? null,
    lastCode: (r.last_code as string | null) ?? null,
    lastMessage: (r.last_message as string | null) ?? null,
    lastStatus: r.last_status === null || r.last_status === undefined ? null : Number(r.last_status),
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  };
}
