import { describe, expect, it } from 'vitest';
import { TajoError, errorMessage } from './errors.js';

describe('TajoError', () => {
  it('carries its code, message, name and defaults: not retryable, no details, no cause', () => {
    const err = new TajoError('some_code', 'it broke');
    expect(err).toBeInstanceOf(Error);
    expect(err.code).toBe('some_code');
    expect(err.message).toBe('it broke');
    expect(err.name).toBe('TajoError');
    expect(err.retryable).toBe(false);
    expect(err.details).toBeUndefined();
    // No `cause` own property at all when none was given (an explicit `cause: undefined` would show in logs).
    expect(Object.hasOwn(err, 'cause')).toBe(false);
  });

  it('keeps retryable, details and cause when given', () => {
    const cause = new Error('socket hang up');
    const err = new TajoError('net', 'request failed', { retryable: true, cause, details: { status: 503 } });
    expect(err.retryable).toBe(true);
    expect(err.details).toEqual({ status: 503 });
    expect(err.cause).toBe(cause);
    expect(new TajoError('x', 'y', { retryable: false }).retryable).toBe(false);
  });
});

describe('errorMessage', () => {
  it('is the message of an Error and the string form of anything else', () => {
    expect(errorMessage(new TypeError('bad type'))).toBe('bad type');
    expect(errorMessage('plain text')).toBe('plain text');
    expect(errorMessage(42)).toBe('42');
    expect(errorMessage(undefined)).toBe('undefined');
  });
});
