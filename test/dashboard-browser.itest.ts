// The dashboard in a real browser (Debian's Chromium driven by playwright-core): open /ui with
// the token, watch a Brevo outage turn events into dead letters without reloading the page,
// retry one once Brevo is back and see it delivered, discard another, and see the charts carry
// data. Takes the README's screenshots (docs/dashboard-*.png) on the way.
import { mkdirSync, mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import type { PlannedOp } from '../src/core/plan.js';
import { sesEvent } from '../src/sim/ses-events/index.js';
import { startStack, until, type Stack } from './helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const TOKEN = 'browser-test-admin-token-0123456789';
const DOCS = join(import.meta.dirname, '..', 'docs');

let stack: Stack;
let context: BrowserContext;
let page: Page;
let profile: string;

beforeAll(async () => {
  // Not skipped when missing: CI installs it (.ci/run), and a dashboard test that silently
  // does not run would prove nothing.
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium`);
  // max_attempts 2: a Brevo 5xx becomes a dead letter after one retry.
  stack = await startStack({ plan: 'unlimited', adminToken: TOKEN, delivery: { max_attempts: 2 } });
  profile = mkdtempSync(join(tmpdir(), 'tajo-chromium-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-quic',
      '--no-first-run',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  page = context.pages()[0] ?? (await context.newPage());
  // Every confirm() of the buttons is answered yes.
  page.on('dialog', (d) => void d.accept());
}, 60_000);

afterAll(async () => {
  await context?.close();
  await stack?.stop();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

function publish(type: 'Click' | 'Reject', id: string, email: string) {
  return stack.publish(stack.sns.notification(stack.topic, sesEvent(type, { messageId: id, recipients: [email], timestamp: '2026-03-05T10:00:00.000Z' })));
}

/** A dead letter with Brevo's 400 (an event name Brevo refuses), for a second code group. */
const refusedEvent = (email: string): PlannedOp => ({
  kind: 'event',
  key: `browser:bad:${email}`,
  email,
  priority: 2,
  lane: 'realtime',
  sources: [`browser:bad:${email}`],
  payload: { event_name: 'Bad Name!', event_date: '2026-03-05T10:00:00.000Z', identifiers: { email_id: email }, event_properties: {} },
});

// The page's globals, for the functions run in it (this project's TypeScript has no DOM types).
// Functions, not strings: a string would be eval'd in the page, which its CSP forbids.
declare const document: { querySelector(sel: string): { textContent: string | null; getAttribute(name: string): string | null } | null };
declare const window: { sameDocument?: boolean };

const untilGone = (email: string) =>
  page.waitForFunction((e) => !(document.querySelector('#sec-dead')?.textContent ?? '').includes(e), email, { timeout: 30_000 });
const untilChart = (attr: string, atLeast: number) =>
  page.waitForFunction(([a, n]) => Number(document.querySelector('#chart-flow')?.getAttribute(a as string)) >= (n as number), [attr, atLeast] as const, {
    timeout: 30_000,
  });

const deadRow = (email: string) => page.locator('#sec-dead tr', { hasText: email });
const chartAttr = async (id: string, name: string) => Number(await page.locator(`#${id}`).getAttribute(name));
const shot = async (name: string) => {
  mkdirSync(DOCS, { recursive: true });
  await page.screenshot({ path: join(DOCS, `dashboard-${name}.png`), fullPage: true });
};

describe('the dashboard in Chromium', () => {
  it('opens with the token (traded for a cookie), shows Brevo healthy and charts with deliveries', async () => {
    for (let i = 0; i < 3; i++) expect((await publish('Click', `browser-ok-${i}`, `reader${i}@example.com`)).status).toBe(200);
    await stack.connector.waitIdle(30_000);
    await page.goto(`${stack.base}/ui?token=${encodeURIComponent(TOKEN)}`);
    expect(new URL(page.url()).search).toBe(''); // the token left the address bar
    await page.locator('#live', { hasText: 'live, updated' }).waitFor();
    await page.locator('#sec-health', { hasText: 'reachable' }).waitFor();
    // The charts fill in by live refresh: the timeline samples every few seconds.
    await untilChart('data-delivered', 6);
    expect(await chartAttr('chart-flow', 'data-received')).toBe(3);
    expect(await page.locator('#chart-flow polyline.delivered').count()).toBe(1);
    await shot('healthy');
    // The CSP holds in the browser: the page's own script runs, a string evaluated in the page does not.
    await expect(page.waitForFunction('window.neverSet === 1', undefined, { timeout: 5_000 })).rejects.toThrow(/unsafe-eval/);
  }, 60_000);

  it('a Brevo outage shows up live (no reload): failing Brevo, dead letters grouped by code', async () => {
    await page.evaluate(() => void (window.sameDocument = true));
    // First a refusal while Brevo is up (a 400: dead at once), then the outage (5xx: dead after a retry).
    await stack.connector.store.enqueue([refusedEvent('carol@example.com')], Date.now());
    stack.connector.wake();
    await deadRow('carol@example.com').waitFor({ timeout: 30_000 });
    stack.brevo.setFaults({ errorRate: 1 });
    expect((await publish('Reject', 'browser-a', 'Alice@Example.com')).status).toBe(200);
    expect((await publish('Reject', 'browser-b', 'bob@example.com')).status).toBe(200);
    await page.locator('#sec-health', { hasText: 'failing for' }).waitFor({ timeout: 30_000 });
    await deadRow('alice@example.com').waitFor({ timeout: 30_000 });
    await deadRow('bob@example.com').waitFor();
    await page.locator('#dead', { hasText: '3 dead letter(s)' }).waitFor();
    await page.locator('#sec-dead h3', { hasText: 'invalid_parameter' }).waitFor();
    await untilChart('data-failed', 4);
    expect(await page.evaluate(() => window.sameDocument)).toBe(true);
    await shot('outage');
  }, 90_000);

  it('a dead letter has its own page: the planned call and what Brevo answered', async () => {
    await deadRow('carol@example.com').locator('a').click();
    await page.locator('#failure').waitFor();
    expect(await page.locator('#call').textContent()).toContain('POST /v3/events');
    expect(await page.locator('#call').textContent()).toContain('"event_name": "Bad Name!"');
    expect(await page.locator('main').textContent()).toContain('invalid_parameter');
    await page.goto(`${stack.base}/ui`); // the cookie still opens it
    await deadRow('carol@example.com').waitFor();
  });

  it('search by email narrows the dead letters', async () => {
    await page.fill('#search', 'bob@');
    await untilGone('alice@example.com');
    expect(await deadRow('bob@example.com').count()).toBe(1);
    expect(new URL(page.url()).searchParams.get('email')).toBe('bob@');
    await page.fill('#search', '');
    await deadRow('alice@example.com').waitFor();
  });

  it('retry: once Brevo is back, the retried dead letter is delivered and leaves the list', async () => {
    stack.brevo.setFaults({ errorRate: 0 });
    await deadRow('alice@example.com').locator('button[data-action="retry"]').click();
    await until(
      () => stack.brevo.state().events.some((e) => e.identifiers.email_id === 'alice@example.com' && e.event_name === 'ses_email_rejected'),
      'the retried event to reach Brevo',
    );
    await untilGone('alice@example.com');
    await page.locator('#note', { hasText: 'Queued 1 dead letter(s)' }).waitFor();
    await page.locator('#sec-health', { hasText: 'reachable' }).waitFor({ timeout: 20_000 });
    await page.locator('#dead', { hasText: '2 dead letter(s)' }).waitFor();
    await shot('dead-letters');
  }, 60_000);

  it('discard: the dead letter is dropped and never sent', async () => {
    await deadRow('bob@example.com').locator('button[data-action="discard"]').click();
    await untilGone('bob@example.com');
    await page.locator('#dead', { hasText: '1 dead letter(s)' }).waitFor();
    const all = await stack.connector.store.listFailures({ limit: 10 });
    expect(all.map((r) => r.email)).toEqual(['carol@example.com']);
    expect(stack.brevo.state().events.filter((e) => e.identifiers.email_id === 'bob@example.com')).toEqual([]);
  });
});
