// Normalized records: what every SES input (SNS notification, SQS message, API page)
// becomes before planning. Pure data, no I/O.

export const SES_EVENT_TYPES = [
  'Send',
  'Delivery',
  'Open',
  'Click',
  'Bounce',
  'Complaint',
  'Reject',
  'DeliveryDelay',
  'RenderingFailure',
  'Subscription',
] as const;

export type SesEventType = (typeof SES_EVENT_TYPES)[number];

export function isSesEventType(v: string): v is SesEventType {
  return (SES_EVENT_TYPES as readonly string[]).includes(v);
}

/** Scalar values only: they become Brevo `event_properties`, which must be flat. */
export type Scalar = string | number | boolean;

/** One SES event for one recipient. */
export interface SesEventRecord {
  kind: 'ses_event';
  /** CONTRACT.md section 5: ses:<mail.messageId>:<eventType>:<recipient>:<discriminator> */
  key: string;
  type: SesEventType;
  /** Payload's own spelling (`Rendering Failure`, `Bounce`...), kept for the operator. */
  rawType: string;
  /** `eventType` (event publishing) or `notificationType` (identity feedback). */
  format: 'eventType' | 'notificationType';
  /** Lower-cased, trimmed address. */
  email: string;
  /** ISO-8601 time of the event itself (not of the SNS envelope). */
  timestamp: string;
  messageId: string;
  subject?: string;
  from?: string;
  configurationSet?: string;
  /** The type's own fields, flattened (bounceType, bounceSubType, diagnosticCode, link, userAgent, ...). */
  details: Record<string, Scalar>;
  /**
   * Transient bounces only, set by the engine from the store: how many soft bounces of this
   * recipient fall within `bounce_policy.soft_bounce_window` up to this one (this one included).
   */
  softBounceCount?: number;
  /**
   * Subscription events: the contact list and, per topic the event names, whether the
   * contact's effective preference is now opt-in (its own preference, else the topic's
   * default; every topic false under UnsubscribeAll).
   */
  topics?: { contactList: string; optIn: Record<string, boolean> };
}

/** A payload whose type we do not know: stored and counted, never crashed on. */
export interface UnknownSesRecord {
  kind: 'unknown';
  rawType: string;
  reason: string;
}

export type ParsedSesNotification = {
  records: SesEventRecord[];
  unknown: UnknownSesRecord[];
};

/** A contact from an SES contact list (backfill). */
export interface SesContactRecord {
  kind: 'ses_contact';
  /** ses-contact:<list>:<email> */
  key: string;
  list: string;
  email: string;
  unsubscribeAll: boolean;
  /** topic name -> effective preference (explicit, else the topic default). */
  topics: Record<string, 'OPT_IN' | 'OPT_OUT'>;
  /** Parsed AttributesData, when fetched. */
  attributes: Record<string, unknown>;
  lastUpdated?: string;
}

/** An entry of the account-level suppression list (backfill). */
export interface SesSuppressionRecord {
  kind: 'ses_suppression';
  /** ses-suppression:<email> */
  key: string;
  email: string;
  reason: 'BOUNCE' | 'COMPLAINT' | string;
  lastUpdated: string;
}

export type SesRecord = SesEventRecord | SesContactRecord | SesSuppressionRecord;

export function normalizeEmail(v: string): string {
  return v.trim().toLowerCase();
}
