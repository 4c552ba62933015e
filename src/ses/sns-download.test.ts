// downloadCertificate with node:http(s) `get` replaced by a scripted exchange: redirects, status,
// size caps, timeouts and errors without a server (the real-socket cases are in sns.itest.ts).
import { EventEmitter } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CertCache, downloadCertificate, verifySnsMessage, type SnsVerificationError } from './sns.js';

const URL_OK = 'https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem';

type FakeRes = EventEmitter & { statusCode: number | undefined; headers: Record<string, string>; resume: ReturnType<typeof vi.fn> };
type FakeReq = EventEmitter & { destroy: ReturnType<typeof vi.fn> };

interface Exchange {
  url: URL;
  options: { headers?: Record<string, string> };
  req: FakeReq;
  answer(status: number | undefined, headers?: Record<string, string>): FakeRes;
}

function scriptGet(mod: typeof http | typeof https): Exchange[] {
  const exchanges: Exchange[] = [];
  vi.spyOn(mod, 'get').mockImplementation(((url: URL, options: Exchange['options'], cb: (res: FakeRes) => void) => {
    const req = Object.assign(new EventEmitter(), { destroy: vi.fn() });
    exchanges.push({
      url,
      options,
      req,
      answer(statusCode, headers = {}) {
        const res = Object.assign(new EventEmitter(), { statusCode, headers, resume: vi.fn() });
        cb(res);
        return res;
      },
    });
    return req;
  }) as unknown as typeof https.get);
  return exchanges;
}

/** What happened, as logged: the caller only ever sees one generic cert_unavailable message. */
function detailOf(err: SnsVerificationError): string {
  return String((err.details as { detail?: unknown } | undefined)?.detail);
}

async function failure(p: Promise<unknown>): Promise<SnsVerificationError> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e as SnsVerificationError,
  );
}

afterEach(() => {
  vi.restoreAllMocks();
  vi.useRealTimers();
});

describe('downloadCertificate', () => {
  it('GETs an https URL over https, asking for PEM, and returns the body as UTF-8', async () => {
    const ex = scriptGet(https);
    const plain = scriptGet(http);
    const p = downloadCertificate(URL_OK);
    expect(ex).toHaveLength(1);
    expect(plain).toHaveLength(0);
    expect(ex[0]!.url.href).toBe(URL_OK);
    expect(ex[0]!.options.headers).toEqual({ accept: 'application/x-pem-file, text/plain;q=0.9, */*;q=0.1' });
    const res = ex[0]!.answer(200, { 'content-length': '9' });
    res.emit('data', Buffer.from('-----BEG'));
    res.emit('data', Buffer.from('Zoë'));
    res.emit('end');
    await expect(p).resolves.toBe('-----BEGZoë');
    expect(ex[0]!.req.destroy).not.toHaveBeenCalled();
  });

  it('an error after the complete answer changes nothing', async () => {
    const ex = scriptGet(https);
    const p = downloadCertificate(URL_OK);
    const res = ex[0]!.answer(200);
    res.emit('data', Buffer.from('pem'));
    res.emit('end');
    res.emit('error', new Error('socket closed'));
    await expect(p).resolves.toBe('pem');
    expect(ex[0]!.req.destroy).not.toHaveBeenCalled();
  });

  it('uses http for an http URL (local simulator)', async () => {
    const plain = scriptGet(http);
    const secure = scriptGet(https);
    const p = downloadCertificate('http://127.0.0.1:9/x.pem');
    expect(plain).toHaveLength(1);
    expect(secure).toHaveLength(0);
    const res = plain[0]!.answer(200);
    res.emit('end');
    await expect(p).resolves.toBe('');
  });

  it('refuses an unparsable URL and other protocols without a request', async () => {
    const ex = scriptGet(https);
    const bad = await failure(downloadCertificate('not a url'));
    expect(bad).toMatchObject({ code: 'cert_unavailable', retryable: true, details: { signingCertUrl: '<unparsable URL>' } });
    expect(detailOf(bad)).toBe('the URL cannot be parsed');
    const ftp = await failure(downloadCertificate('ftp://sns.us-east-1.amazonaws.com/x.pem'));
    expect(detailOf(ftp)).toBe('protocol ftp: is not supported');
    expect(ex).toHaveLength(0);
  });

  it.each([300, 302, 399])('refuses a redirect (HTTP %i) without following it', async (status) => {
    const ex = scriptGet(https);
    const p = downloadCertificate(URL_OK);
    const res = ex[0]!.answer(status, { location: 'https://elsewhere.example/x.pem' });
    const err = await failure(p);
    expect(detailOf(err)).toContain(`the server answered HTTP ${status} (a redirect); redirects are not followed for signing certificates`);
    expect(res.resume).toHaveBeenCalled();
    expect(ex[0]!.req.destroy).toHaveBeenCalledTimes(1);
  });

  it.each([
    [400, 'HTTP 400'],
    [404, 'HTTP 404'],
    [500, 'HTTP 500'],
    [299, 'HTTP 299'],
    [undefined, 'HTTP 0'],
  ])('refuses a non-200 answer (%s)', async (status, text) => {
    const ex = scriptGet(https);
    const p = downloadCertificate(URL_OK);
    const res = ex[0]!.answer(status);
    const err = await failure(p);
    expect(err.code).toBe('cert_unavailable');
    expect(detailOf(err)).toBe(`the server answered ${text}`);
    expect(res.resume).toHaveBeenCalled();
  });

  it('refuses a declared length over the cap before reading; the cap itself is allowed', async () => {
    const ex = scriptGet(https);
    const over = downloadCertificate(URL_OK, { maxBytes: 10 });
    const res = ex[0]!.answer(200, { 'content-length': '11' });
    expect(detailOf(await failure(over))).toContain('the certificate is 11 bytes, over the 10-byte limit');
    expect(res.resume).toHaveBeenCalled();

    const exact = downloadCertificate(URL_OK, { maxBytes: 10 });
    const res2 = ex[1]!.answer(200, { 'content-length': '10' });
    res2.emit('data', Buffer.alloc(10, 0x41));
    res2.emit('end');
    await expect(exact).resolves.toBe('A'.repeat(10));
    expect(res2.resume).not.toHaveBeenCalled();

    const unknownLength = downloadCertificate(URL_OK, { maxBytes: 10 });
    const res3 = ex[2]!.answer(200, { 'content-length': 'lots' });
    res3.emit('data', Buffer.from('ok'));
    res3.emit('end');
    await expect(unknownLength).resolves.toBe('ok');
  });

  it('stops reading once the streamed body passes the cap', async () => {
    const ex = scriptGet(https);
    const p = downloadCertificate(URL_OK, { maxBytes: 10 });
    const res = ex[0]!.answer(200);
    res.emit('data', Buffer.alloc(6));
    res.emit('data', Buffer.alloc(4));
    expect(ex[0]!.req.destroy).not.toHaveBeenCalled();
    res.emit('data', Buffer.alloc(1));
    res.emit('end');
    const err = await failure(p);
    expect(detailOf(err)).toContain('the certificate is over the 10-byte limit');
    expect(ex[0]!.req.destroy).toHaveBeenCalledTimes(1);
  });

  it('defaults to a 64 KiB cap', async () => {
    const ex = scriptGet(https);
    const over = downloadCertificate(URL_OK);
    ex[0]!.answer(200, { 'content-length': String(64 * 1024 + 1) });
    expect(detailOf(await failure(over))).toContain('over the 65536-byte limit');
    const exact = downloadCertificate(URL_OK);
    const res = ex[1]!.answer(200, { 'content-length': String(64 * 1024) });
    res.emit('end');
    await expect(exact).resolves.toBe('');
  });

  it('reports request and response errors once, with their cause', async () => {
    const ex = scriptGet(https);
    const boom = new Error('ECONNREFUSED');
    const p = downloadCertificate(URL_OK);
    ex[0]!.req.emit('error', boom);
    ex[0]!.req.emit('error', new Error('second'));
    const err = await failure(p);
    expect(detailOf(err)).toBe('ECONNREFUSED');
    expect(err.cause).toBe(boom);
    expect(ex[0]!.req.destroy).toHaveBeenCalledTimes(1);

    const q = downloadCertificate(URL_OK);
    const res = ex[1]!.answer(200);
    res.emit('error', new Error('aborted mid-body'));
    expect(detailOf(await failure(q))).toBe('aborted mid-body');
  });

  it('gives up after timeoutMs (default 5 s), and leaves no timer behind when done', async () => {
    vi.useFakeTimers();
    const ex = scriptGet(https);
    const p = downloadCertificate(URL_OK, { timeoutMs: 50 });
    const settled = vi.fn();
    p.then(settled, settled);
    await vi.advanceTimersByTimeAsync(49);
    expect(settled).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    expect(detailOf(await failure(p))).toContain('no complete answer within 50 ms');
    expect(ex[0]!.req.destroy).toHaveBeenCalledTimes(1);

    const q = downloadCertificate(URL_OK);
    const late = vi.fn();
    q.then(late, late);
    await vi.advanceTimersByTimeAsync(4999);
    expect(late).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    expect(detailOf(await failure(q))).toContain('no complete answer within 5000 ms');

    const r = downloadCertificate(URL_OK, { timeoutMs: 50 });
    const res = ex[2]!.answer(200);
    res.emit('end');
    await expect(r).resolves.toBe('');
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('verifySnsMessage with the default certificate download', () => {
  const NOW = Date.parse('2024-05-01T12:00:00.000Z');
  const TOPIC = 'arn:aws:sns:us-east-1:123456789012:t';
  const env = {
    Type: 'Notification',
    MessageId: 'm-1',
    TopicArn: TOPIC,
    Message: '{}',
    Timestamp: '2024-05-01T11:59:00.000Z',
    SignatureVersion: '1',
    Signature: 'QUJD',
    SigningCertURL: URL_OK,
  };

  it('downloads the SigningCertURL with the configured size cap and timeout', async () => {
    const ex = scriptGet(https);
    const opts = { topicArns: [TOPIC], maxMessageAgeMs: 3_600_000, now: () => NOW, certCache: new CertCache() };
    const capped = verifySnsMessage(env, { ...opts, certMaxBytes: 100 });
    await vi.waitFor(() => expect(ex).toHaveLength(1));
    expect(ex[0]!.url.href).toBe(URL_OK);
    ex[0]!.answer(200, { 'content-length': '101' });
    const err = await failure(capped);
    expect(err).toMatchObject({ code: 'cert_unavailable', status: 503 });
    expect(detailOf(err)).toContain('over the 100-byte limit');

    // A fresh cache: the one above remembers the failed URL for 30 s.
    const timed = verifySnsMessage(env, { ...opts, certCache: new CertCache(), certTimeoutMs: 20 });
    expect(detailOf(await failure(timed))).toContain('no complete answer within 20 ms');
  });
});
