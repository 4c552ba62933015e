import { describe, expect, it } from 'vitest';
import { SES_EVENT_TYPES, isSesEventType, normalizeEmail } from './types.js';

describe('isSesEventType', () => {
  it('accepts exactly the normalized SES event types', () => {
    for (const t of SES_EVENT_TYPES) expect(isSesEventType(t), t).toBe(true);
    // The payload spelling with a space is mapped by the parser; it is no normalized type.
    for (const t of ['Rendering Failure', 'bounce', 'Received', '', 'toString']) expect(isSesEventType(t), t).toBe(false);
  });

  it('lists the ten SES event types of CONTRACT.md section 4', () => {
    expect([...SES_EVENT_TYPES].sort()).toEqual(
      ['Bounce', 'Click', 'Complaint', 'Delivery', 'DeliveryDelay', 'Open', 'Reject', 'RenderingFailure', 'Send', 'Subscription'].sort(),
    );
  });
});

describe('normalizeEmail', () => {
  it('trims and lower-cases', () => {
    expect(normalizeEmail('  Ann.Lee@Example.COM \t')).toBe('ann.lee@example.com');
  });
});
