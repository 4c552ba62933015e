// What Brevo receives (CONTRACT.md section 4): attribute names and types, event names,
// and the value formats Brevo accepts for each type. Brevo silently drops a value whose
// attribute is missing or whose format is wrong, so every value goes through `formatValue`.
import type { SesEventType } from './types.js';

export type BrevoAttributeType = 'text' | 'date' | 'boolean' | 'float';

export const SES_ATTRIBUTES = {
  SES_LAST_EVENT: 'text',
  SES_LAST_EVENT_AT: 'date',
  SES_LAST_DELIVERED_AT: 'date',
  SES_LAST_OPENED_AT: 'date',
  SES_LAST_CLICKED_AT: 'date',
  SES_BOUNCE_TYPE: 'text',
  SES_BOUNCE_SUBTYPE: 'text',
  SES_LAST_BOUNCED_AT: 'date',
  SES_COMPLAINT_TYPE: 'text',
  SES_COMPLAINED_AT: 'date',
  SES_SUPPRESSED: 'boolean',
  SES_SUPPRESSION_REASON: 'text',
  SES_SUPPRESSED_AT: 'date',
  SES_UNSUBSCRIBED_ALL: 'boolean',
  SES_SOFT_BOUNCE_COUNT: 'float',
} as const satisfies Record<string, BrevoAttributeType>;

export type SesAttributeName = keyof typeof SES_ATTRIBUTES;

export const EVENT_NAMES: Record<SesEventType, string> = {
  Send: 'ses_email_sent',
  Delivery: 'ses_email_delivered',
  Bounce: 'ses_email_bounced',
  Complaint: 'ses_email_complained',
  Reject: 'ses_email_rejected',
  Open: 'ses_email_opened',
  Click: 'ses_email_clicked',
  RenderingFailure: 'ses_email_rendering_failed',
  DeliveryDelay: 'ses_email_delivery_delayed',
  Subscription: 'ses_subscription_changed',
};

/** Brevo's date attributes take `YYYY-MM-DD`; a full timestamp is not accepted everywhere. */
export function brevoDate(iso: string): string {
  return new Date(iso).toISOString().slice(0, 10);
}

export function formatValue(type: BrevoAttributeType, v: unknown): string | number | boolean | undefined {
  switch (type) {
    case 'date':
      return typeof v === 'string' && !Number.isNaN(Date.parse(v)) ? brevoDate(v) : undefined;
    case 'boolean':
      return typeof v === 'boolean' ? v : undefined;
    case 'float':
      return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
    case 'text':
      return v === undefined || v === null ? undefined : String(v);
  }
}

export function isValidEventName(name: string): boolean {
  return /^[a-z_]+$/.test(name);
}
