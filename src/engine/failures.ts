// How a dead letter is shown to an operator: the source records, the Brevo call we planned,
// and what Brevo answered.
import type { OpRow, RefusedMessageRow } from '../store/port.js';
import { plannedCall } from './deliver.js';

export interface FailureView {
  id: number;
  kind: string;
  state: string;
  email: string;
  key: string;
  sources: string[];
  call: { method: string; path: string; body: unknown };
  error: { code: string | null; message: string | null; status: number | null };
  attempts: number;
  /** Every failed attempt, oldest first (kept across retries). */
  history: Array<{ at: string; code: string; message: string | null; status: number | null }>;
  createdAt: string;
  updatedAt: string;
}

export function failureView(r: OpRow): FailureView {
  return {
    id: r.id,
    kind: r.kind,
    state: r.state,
    email: r.email,
    key: r.key,
    sources: r.sources,
    call: plannedCall(r),
    error: { code: r.lastCode, message: r.lastMessage, status: r.lastStatus },
    attempts: r.attempts,
    history: r.history.map((h) => ({ at: new Date(h.at).toISOString(), code: h.code, message: h.message, status: h.status })),
    createdAt: new Date(r.createdAt).toISOString(),
    updatedAt: new Date(r.updatedAt).toISOString(),
  };
}

/** A message an intake refused for good (a poison SQS message): not a dead letter, nothing to retry. */
export interface RefusedView {
  kind: 'refused_message';
  id: number;
  source: string;
  reason: string;
  message: string;
  /** The SQS MessageId. */
  sqsMessageId: string | null;
  body: string;
  at: string;
}

export function refusedView(r: RefusedMessageRow): RefusedView {
  return {
    kind: 'refused_message',
    id: r.id,
    source: r.source,
    reason: r.reason,
    message: r.message,
    sqsMessageId: r.externalId,
    body: r.body,
    at: new Date(r.at).toISOString(),
  };
}
