// EventBridge events from SES (source `aws.ses`): the `detail` of an email sending event is the
// event-publishing record SES also sends to SNS, so it goes through the same parser.
import type { ParsedSesNotification, SesEventType } from '../core/types.js';
import { parseSesNotification } from './parse.js';

/** The `detail-type` SES gives each email sending event on the default event bus. */
export const EVENTBRIDGE_DETAIL_TYPES: ReadonlyMap<string, SesEventType> = new Map<string, SesEventType>([
  ['Email Sent', 'Send'],
  ['Email Delivered', 'Delivery'],
  ['Email Bounced', 'Bounce'],
  ['Email Complaint Received', 'Complaint'],
  ['Email Opened', 'Open'],
  ['Email Clicked', 'Click'],
  ['Email Rendering Failed', 'RenderingFailure'],
  ['Email Delivery Delayed', 'DeliveryDelay'],
  ['Email Rejected', 'Reject'],
  ['Email Subscribed', 'Subscription'],
]);

/** The fields of an EventBridge event the connector reads. */
export interface EventBridgeEvent {
  id: string;
  'detail-type': string;
  source: string;
  detail: unknown;
}

/**
 * The event of a request body, or why it is not one. Only the envelope is checked here; the
 * `detail` is judged when the stored event is planned, like an SNS Message.
 */
export function readEventBridgeEvent(body: string): { event: EventBridgeEvent } | { problem: string } {
  let v: unknown;
  try {
    v = JSON.parse(body);
  } catch {
    return { problem: 'body is not JSON (EventBridge API destinations send the event as a JSON object)' };
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return { problem: 'body must be a JSON object (an EventBridge event)' };
  const e = v as Record<string, unknown>;
  const id = e['id'];
  if (typeof id !== 'string' || id === '' || id.length > 256) return { problem: 'the event has no `id` (1 to 256 characters)' };
  if (typeof e['detail-type'] !== 'string') return { problem: 'the event has no `detail-type`' };
  if (typeof e['source'] !== 'string') return { problem: 'the event has no `source`' };
  if (!('detail' in e)) return { problem: 'the event has no `detail`' };
  return { event: e as unknown as EventBridgeEvent };
}

/** Is this stored body an EventBridge event (rather than an SNS envelope or a bare SES record)? */
export function isEventBridgeEvent(v: unknown): v is EventBridgeEvent {
  return typeof v === 'object' && v !== null && typeof (v as Record<string, unknown>)['detail-type'] === 'string' && 'detail' in v;
}

/**
 * One record per recipient, as parseSesNotification gives them. An event that is not an SES
 * email sending event (another source, another detail-type such as "Sending Status Disabled")
 * is reported as unknown, with its detail-type as the type, never thrown on.
 */
export function parseEventBridgeEvent(e: EventBridgeEvent): ParsedSesNotification {
  const detailType = e['detail-type'];
  const reason =
    e.source !== 'aws.ses'
      ? `EventBridge event from ${JSON.stringify(e.source.slice(0, 60))}, not aws.ses`
      : !EVENTBRIDGE_DETAIL_TYPES.has(detailType)
        ? `unknown EventBridge detail-type ${JSON.stringify(detailType.slice(0, 60))}`
        : undefined;
  if (reason !== undefined) return { records: [], unknown: [{ kind: 'unknown', rawType: detailType.slice(0, 60), reason }] };
  return parseSesNotification(e.detail);
}
