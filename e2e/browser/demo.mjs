#!/usr/bin/env node
// demo.mjs: drives the demo page of `notifd standalone` in headless chromium.
//
//   node e2e/browser/demo.mjs <base-url> <screenshot-path>
//
// For each transport (WebSocket, SSE, long-polling), as a recipient of its
// own: connect, publish two notifications from the form, wait until both are
// listed in order and acknowledged, disconnect. Then a full-page screenshot.
// Exits 0 on success; otherwise 1 with a message naming the transport and
// what did not happen. Any uncaught page error or console error fails it.
// Everything is bounded in time, and the page may load only loopback URLs.
//
// Needs Debian's chromium and this folder's node_modules: run ./setup first.
// CHROMIUM overrides the browser's path (default /usr/bin/chromium).

import { chromium } from 'playwright-core';

const STEP_TIMEOUT_MS = 15_000;
const TOTAL_TIMEOUT_MS = 120_000;
const TRANSPORTS = ['ws', 'sse', 'poll'];
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

const [base, screenshotPath] = process.argv.slice(2);
if (!base || !screenshotPath) fail('usage: node e2e/browser/demo.mjs <base-url> <screenshot-path>', 2);
const baseUrl = new URL(base);
if (!LOOPBACK.has(baseUrl.hostname)) fail(`${base} is not a loopback URL`, 2);

function fail(message, code = 1) {
  console.error(`demo: FAILED: ${message}`);
  process.exit(code);
}

// The last guard: whatever hangs, the run ends.
setTimeout(() => fail(`the whole run took longer than ${TOTAL_TIMEOUT_MS / 1000} s`), TOTAL_TIMEOUT_MS).unref();

const problems = []; // page errors, console errors, non-loopback requests

const started = Date.now();
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox'],
  headless: true,
  timeout: STEP_TIMEOUT_MS,
}).catch((e) => fail(`cannot start chromium (run e2e/browser/setup): ${e.message}`));

let page;
try {
  page = await browser.newPage({ viewport: { width: 900, height: 900 } });
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  page.on('pageerror', (e) => problems.push(`uncaught page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console error: ${m.text()}${m.location().url ? ` (${m.location().url})` : ''}`);
  });
  page.on('request', (r) => {
    const host = new URL(r.url()).hostname;
    if (/^(https?|wss?):$/.test(new URL(r.url()).protocol) && !LOOPBACK.has(host)) {
      problems.push(`the page requested a non-loopback URL: ${r.url()}`);
    }
  });

  const response = await page.goto(new URL('/', baseUrl).href, { waitUntil: 'load' });
  if (!response || response.status() !== 200) {
    throw new Error(`GET / answered ${response ? response.status() : 'nothing'}`);
  }
  checkProblems('loading the page');

  const suffix = Date.now().toString(36);
  const timings = [];
  for (const transport of TRANSPORTS) {
    const t0 = Date.now();
    await run(transport, `demo-${transport}-${suffix}`);
    timings.push(`${transport} ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }

  await page.screenshot({ path: screenshotPath, fullPage: true });
  checkProblems('the end of the run');
  await browser.close();
  console.log(`demo: ok (${timings.join(', ')}; ${((Date.now() - started) / 1000).toFixed(1)} s in all); screenshot: ${screenshotPath}`);
} catch (e) {
  // A screenshot of the failure helps more than none.
  if (page) await page.screenshot({ path: screenshotPath, fullPage: true, timeout: 5_000 }).catch(() => {});
  await browser.close().catch(() => {});
  fail(e.message);
}

function checkProblems(when) {
  if (problems.length) throw new Error(`at ${when}: ${problems.join('; ')}`);
}

// One transport, as one recipient: connect, publish two, see both
// acknowledged in order, disconnect.
async function run(transport, recipient) {
  const step = async (what, action) => {
    try {
      await action();
    } catch (e) {
      const shown = await page.locator('#error').textContent({ timeout: 1_000 }).catch(() => '');
      throw new Error(`${transport}: ${what}: ${e.message.split('\n')[0]}${shown ? ` (the page shows: ${shown})` : ''}`);
    }
    checkProblems(`${transport}: ${what}`);
  };

  await step('connecting', async () => {
    await page.fill('#recipient', recipient);
    await page.selectOption('#transport', transport);
    await page.click('#connect');
    // Connected, or given up on (an error shown, or no credentials).
    await page.waitForFunction(() => {
      const state = document.getElementById('status').dataset.state;
      return state === 'connected' || document.getElementById('error').textContent !== ''
        || (state !== 'connecting' && state !== 'reconnecting');
    });
    const status = await page.locator('#status').textContent();
    if (!status.startsWith('connected')) {
      const credentials = await page.locator('#credentials').isVisible();
      throw new Error(`not connected: the status says "${status}"${
        credentials ? '; the page asks for credentials: GET /demo/tokens did not answer 200' : ''}`);
    }
  });

  const ids = [];
  for (const text of [`${transport} first`, `${transport} second`]) {
    await step(`publishing "${text}"`, async () => {
      await page.fill('#message', text);
      const [answer] = await Promise.all([
        page.waitForResponse((r) => r.url().endsWith('/v1/notifications') && r.request().method() === 'POST'),
        page.click('#publish'),
      ]);
      if (answer.status() !== 202) throw new Error(`POST /v1/notifications answered ${answer.status()}: ${await answer.text()}`);
      ids.push(...(await answer.json()).ids);
    });
  }
  if (ids.length !== 2) throw new Error(`${transport}: two publishes gave ${ids.length} ids`);

  await step('waiting for both notifications to arrive and be acknowledged', async () => {
    try {
      // Each one acknowledged, or an error shown: no point waiting longer then.
      await page.waitForFunction(
        (ids) => ids.every((id) =>
          document.querySelector(`#notifications li[data-id="${CSS.escape(id)}"]`)?.dataset.state === 'acknowledged')
          || document.getElementById('error').textContent !== '',
        ids,
        { timeout: STEP_TIMEOUT_MS },
      );
    } catch {
      throw new Error(`within ${STEP_TIMEOUT_MS / 1000} s: ${await describe(ids)}`);
    }
    const shown = await page.locator('#error').textContent();
    if (shown) throw new Error(`the page shows an error: ${shown}`);
    const unacknowledged = await describe(ids);
    if (/arrived but|never/.test(unacknowledged)) throw new Error(unacknowledged);
    const listed = await page.$$eval('#notifications li', (lis) => lis.map((li) => ({
      id: li.dataset.id, position: Number(li.dataset.position), text: li.querySelector('.text').textContent,
    })));
    const mine = listed.filter((n) => ids.includes(n.id));
    if (mine.map((n) => n.id).join() !== ids.join()) {
      throw new Error(`listed out of order: ${mine.map((n) => n.text).join(', ')}`);
    }
    if (!(mine[0].position < mine[1].position)) {
      throw new Error(`positions do not grow: ${mine[0].position} then ${mine[1].position}`);
    }
    const texts = mine.map((n) => n.text).join(' | ');
    if (texts !== `${transport} first | ${transport} second`) throw new Error(`the payload texts are ${texts}`);
  });

  await step('disconnecting', async () => {
    await page.click('#disconnect');
    await page.waitForSelector('#status[data-state="disconnected"]');
  });
}

// What became of each published notification, for a failure message.
async function describe(ids) {
  const states = await page.$$eval('#notifications li', (lis) => Object.fromEntries(lis.map((li) => [li.dataset.id, li.dataset.state])));
  const status = await page.locator('#status').textContent();
  return ids.map((id, i) => `notification ${i + 1} (${id}) ${
    !states[id] ? 'never arrived'
      : states[id] === 'acknowledged' ? 'was acknowledged'
      : `arrived but stayed "${states[id]}"`
  }`).join('; ') + `; status: ${status}`;
}
