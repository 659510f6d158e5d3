#!/usr/bin/env node
// sdk.mjs: the TypeScript SDK (sdk/typescript/dist/notif.js) in headless
// chromium, against a real notifd.
//
//   NOTIF_SDK_JWT_SECRET=... NOTIF_SDK_API_KEY=... node e2e/browser/sdk.mjs <base-url>
//
// The service signs client tokens with the secret (HS256) and takes the API
// key for publishing. Each scenario runs as a recipient of its own, on a page
// of the service's origin that loads the bundle:
//
//   ws, sse, poll  each transport alone: 20 notifications in order, each once, all acknowledged
//   fallback       WebSocket and SSE blocked: long-polling; SSE unblocked: SSE; WebSocket unblocked: WebSocket again
//   restart        the service restarted mid-stream: nothing lost, no duplicate handed over
//   offline        the browser offline then online: the client waits, then resumes
//   two-tabs       two tabs of one recipient each get everything; each acknowledges half, and that settles all
//   token          an expired token refreshed through getToken; short-lived tokens refreshed before they expire
//
// "Acknowledged" is checked at the service: a poll that acknowledges nothing
// finds nothing held. For `restart` the script prints "restart" and waits for
// a line "restarted" on its standard input (the Rust test restarts notifd).
// Exits 0 with a line per scenario, or 1 naming the scenario and what did not happen.
// NOTIF_SDK_PUBLISH_URL publishes elsewhere than <base-url> (the distributed
// roles' receiver); NOTIF_SDK_SCENARIOS=ws,token runs only those.

import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';
import { held, mintToken, publish, sleep, waitFor } from '../../sdk/typescript/test/integration/service.mjs';

const TOTAL_TIMEOUT_MS = 240_000;
const BUNDLE = new URL('../../sdk/typescript/dist/notif.js', import.meta.url);
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

const [base] = process.argv.slice(2);
const secret = process.env.NOTIF_SDK_JWT_SECRET;
const apiKey = process.env.NOTIF_SDK_API_KEY;
// Where to publish, when not where clients connect (the distributed roles).
const publishUrl = process.env.NOTIF_SDK_PUBLISH_URL ?? base;
if (!base || !secret || !apiKey) fail('usage: NOTIF_SDK_JWT_SECRET=... NOTIF_SDK_API_KEY=... node e2e/browser/sdk.mjs <base-url>', 2);
if (!LOOPBACK.has(new URL(base).hostname)) fail(`${base} is not a loopback URL`, 2);
const only = process.env.NOTIF_SDK_SCENARIOS?.split(',');

function fail(message, code = 1) {
  console.error(`sdk: FAILED: ${message}`);
  process.exit(code);
}
setTimeout(() => fail(`the whole run took longer than ${TOTAL_TIMEOUT_MS / 1000} s`), TOTAL_TIMEOUT_MS).unref();

const stdin = createInterface({ input: process.stdin });
const lines = stdin[Symbol.asyncIterator]();

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox'],
  headless: true,
  timeout: 15_000,
}).catch((e) => fail(`cannot start chromium (run e2e/browser/setup): ${e.message}`));

// ---- the page ----------------------------------------------------------------

/**
 * A tab on the service's origin with the bundle loaded and `window.sdk`: a
 * client per name, each recording its states, notifications, acknowledged
 * ids and errors. Tokens come from this script (exposed `mintToken`).
 */
async function tab(context, tokens = (recipient) => mintToken(secret, recipient)) {
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`uncaught page error: ${e.message}`));
  page.on('request', (r) => {
    const url = new URL(r.url());
    if (/^(https?|wss?):$/.test(url.protocol) && !LOOPBACK.has(url.hostname)) problems.push(`a request to ${r.url()}`);
  });
  page.check = () => {
    if (problems.length) throw new Error(problems.join('; '));
  };
  await page.exposeFunction('mintToken', (recipient) => tokens(recipient));
  // The bundle from the repository, as if the service served it. The page
  // itself must come from the service: chromium lets only a page from a
  // loopback address connect to one.
  await page.route(`${base}/sdk-test/notif.js`, (route) => route.fulfill({ contentType: 'text/javascript', body: readFileSync(BUNDLE, 'utf8') }));
  await page.goto(`${base}/v1/openapi.json`);
  await page.evaluate(async () => {
    const { connect } = await import('/sdk-test/notif.js');
    window.sdk = {};
    window.start = (name, recipient, options = {}) => {
      const record = { states: [], got: [], acked: [], errors: [] };
      const client = connect({
        url: location.origin,
        getToken: () => window.mintToken(recipient),
        backoff: { initialMs: 100, maxMs: 1_000 },
        ...options,
      });
      client.on('state', (s) => record.states.push(s.state === 'connected' || s.state === 'connecting' ? `${s.state}:${s.transport}` : s.state === 'reconnecting' ? `reconnecting (${s.reason})` : s.state));
      client.on('notification', (n) => void record.got.push(n.id));
      client.on('acked', ({ ids }) => void record.acked.push(...ids));
      client.on('error', (e) => void record.errors.push(e.message));
      window.sdk[name] = { client, record };
    };
    window.record = (name) => window.sdk[name].record;
    window.state = (name) => window.sdk[name].client.state;
  });
  return page;
}

const record = (page, name = 'c') => page.evaluate((name) => window.record(name), name);

async function waitConnected(page, transport, name = 'c') {
  await waitFor(async () => `not connected over ${transport}: states ${(await record(page, name)).states.join(' > ')}`,
    async () => {
      const s = await page.evaluate((name) => window.state(name), name);
      return s.state === 'connected' && s.transport === transport;
    });
}

/** Waits until client `name` got `ids` (in order, each once) and the service holds nothing for `recipient`. */
async function delivered(page, recipient, ids, name = 'c') {
  await waitFor(async () => {
    const r = await record(page, name);
    return `${name} got ${r.got.length} of ${ids.length}; states ${r.states.join(' > ')}; errors ${r.errors.join(' | ')}`;
  }, async () => (await record(page, name)).got.length >= ids.length);
  const r = await record(page, name);
  if (r.got.join() !== ids.join()) throw new Error(`${name} got ${r.got.join()}, not ${ids.join()} (in order, each once)`);
  await waitFor(async () => `the service still holds ${await held(base, secret, recipient)}`,
    async () => (await held(base, secret, recipient)).length === 0);
  page.check();
}

const texts = (n, label) => Array.from({ length: n }, (_, i) => `${label} ${i + 1}`);

// ---- the scenarios -------------------------------------------------------------

function each(transport) {
  return async (context, recipient) => {
    const page = await tab(context);
    await page.evaluate(([r, t]) => window.start('c', r, { transports: [t] }), [recipient, transport]);
    await waitConnected(page, transport);
    const ids = await publish(publishUrl, apiKey, recipient, texts(20, transport));
    await delivered(page, recipient, ids);
    await waitFor('every acknowledgement confirmed', async () => (await record(page)).acked.length === ids.length);
    return `20 delivered in order and acknowledged over ${transport}`;
  };
}

async function fallback(context, recipient) {
  const page = await tab(context);
  const blocked = { ws: true, sse: true };
  // As a proxy would: the WebSocket upgrade fails, the event stream is not found.
  await page.routeWebSocket(/\/v1\/connect\/ws/, (ws) => (blocked.ws ? ws.close() : ws.connectToServer()));
  await page.route(/\/v1\/connect\/sse/, (route) => (blocked.sse ? route.fulfill({ status: 404, body: 'not here' }) : route.continue()));
  await page.evaluate((r) => window.start('c', r, { retryPreferredAfterMs: 2_000 }), recipient);
  await waitConnected(page, 'poll');
  const first = await publish(publishUrl, apiKey, recipient, texts(3, 'over poll'));
  await delivered(page, recipient, first);
  blocked.sse = false;
  await waitConnected(page, 'sse');
  const second = await publish(publishUrl, apiKey, recipient, texts(3, 'over sse'));
  await delivered(page, recipient, [...first, ...second]);
  blocked.ws = false;
  await waitConnected(page, 'ws');
  const third = await publish(publishUrl, apiKey, recipient, texts(3, 'over ws'));
  await delivered(page, recipient, [...first, ...second, ...third]);
  const { states } = await record(page);
  const path = states.filter((s) => s.startsWith('connected')).join(' > ');
  if (!/^connected:poll( > connected:poll)* > connected:sse( > connected:sse)* > connected:ws/.test(path)) throw new Error(`connected ${path}`);
  return `ws and sse blocked: poll; sse unblocked: sse; ws unblocked: ws; 9 delivered once`;
}

async function restart(context, recipient) {
  const page = await tab(context);
  await page.evaluate((r) => window.start('c', r), recipient);
  await waitConnected(page, 'ws');
  const before = await publish(publishUrl, apiKey, recipient, texts(5, 'before'));
  await waitFor('the first five', async () => (await record(page)).got.length === 5);
  // Some handed over and not yet acknowledged when the service goes.
  await page.evaluate(() => window.sdk.c.client.on('notification', () => new Promise((r) => setTimeout(r, 150))));
  const during = await publish(publishUrl, apiKey, recipient, texts(5, 'during'));
  await waitFor('the sixth', async () => (await record(page)).got.length >= 6);
  console.log('restart');
  const answer = await lines.next();
  if (answer.value !== 'restarted') throw new Error(`the test answered ${answer.value ?? 'nothing'} to "restart"`);
  await waitConnected(page, 'ws');
  const after = await publish(publishUrl, apiKey, recipient, texts(5, 'after'));
  await delivered(page, recipient, [...before, ...during, ...after]);
  const { states } = await record(page);
  if (!states.some((s) => s.startsWith('reconnecting'))) throw new Error(`no reconnect: ${states.join(' > ')}`);
  return `15 delivered once across the restart; ${states.filter((s) => s.startsWith('reconnecting')).length} reconnect waits`;
}

async function offline(context, recipient) {
  const page = await tab(context);
  await page.evaluate((r) => window.start('c', r, { transports: ['sse'] }), recipient);
  await waitConnected(page, 'sse');
  const before = await publish(publishUrl, apiKey, recipient, texts(3, 'online'));
  await waitFor('the first three', async () => (await record(page)).got.length === 3);
  await context.setOffline(true);
  await waitFor('offline', async () => (await page.evaluate(() => window.state('c'))).state === 'offline');
  const during = await publish(publishUrl, apiKey, recipient, texts(3, 'while offline'));
  await sleep(500);
  if ((await record(page)).got.length !== 3) throw new Error('received while offline');
  await context.setOffline(false);
  await waitConnected(page, 'sse');
  await delivered(page, recipient, [...before, ...during]);
  return '3 before, 3 published while offline, all delivered once on coming online';
}

async function twoTabs(context, recipient) {
  const one = await tab(context);
  const two = await tab(context);
  // Each tab acknowledges only every other notification: all settle only if either tab's acknowledgement counts.
  for (const [page, parity] of [[one, 0], [two, 1]]) {
    await page.evaluate(([r, parity]) => {
      window.start('c', r, { ack: 'manual' });
      let count = 0;
      window.sdk.c.client.on('notification', (n) => {
        if (count++ % 2 === parity) window.sdk.c.client.ack(n.id);
      });
    }, [recipient, parity]);
    await waitConnected(page, 'ws');
  }
  const ids = await publish(publishUrl, apiKey, recipient, texts(10, 'both tabs'));
  await delivered(one, recipient, ids);
  await delivered(two, recipient, ids);
  return 'both tabs got all 10; half acknowledged by each settled all';
}

async function token(context, recipient) {
  let calls = 0;
  // The first token has expired (beyond the service's leeway); later ones last 4 s.
  const page = await tab(context, (r) => (++calls === 1 ? mintToken(secret, r, -120) : mintToken(secret, r, 4)));
  const refused = [];
  page.on('response', (r) => r.status() === 401 && refused.push(r.url()));
  await page.evaluate((r) => window.start('c', r, { transports: ['ws'] }), recipient);
  await waitConnected(page, 'ws');
  const first = await publish(publishUrl, apiKey, recipient, texts(2, 'ws'));
  await delivered(page, recipient, first);
  if (calls < 2) throw new Error(`getToken was called ${calls} times`);
  // Long-polling needs a token for every poll: 4-second tokens are refreshed
  // before they expire, while notifications keep coming.
  await page.evaluate((r) => window.start('p', r, { transports: ['poll'], pollWaitSecs: 1 }), `${recipient}-poll`);
  await waitConnected(page, 'poll', 'p');
  const before = calls;
  const deadline = Date.now() + 15_000;
  const ids = [];
  while (calls - before < 2) {
    if (Date.now() > deadline) throw new Error(`getToken was called ${calls - before} times in 15 s of 4-second tokens`);
    ids.push(...await publish(publishUrl, apiKey, `${recipient}-poll`, [`poll ${ids.length + 1}`]));
    await sleep(500);
  }
  await delivered(page, `${recipient}-poll`, ids, 'p');
  const late = refused.filter((url) => !url.includes('/v1/connect/ws'));
  if (late.length) throw new Error(`refused after the first token: ${late.join(', ')}`);
  return `expired token refused then refreshed; ${calls} tokens in all, none refused but the expired one`;
}

// ---- the run ------------------------------------------------------------------

const suffix = Date.now().toString(36);
const results = [];
const scenarios = { ws: each('ws'), sse: each('sse'), poll: each('poll'), fallback, restart, offline, 'two-tabs': twoTabs, token };
try {
  for (const [name, scenario] of Object.entries(scenarios)) {
    if (only && !only.includes(name)) continue;
    const started = Date.now();
    const context = await browser.newContext();
    try {
      const detail = await scenario(context, `sdk-${name}-${suffix}`);
      results.push(`${name} ok (${detail}; ${((Date.now() - started) / 1000).toFixed(1)} s)`);
    } catch (e) {
      throw new Error(`${name}: ${e.message}`);
    } finally {
      await context.close();
    }
  }
  await browser.close();
  console.log(`sdk: ${results.join('\nsdk: ')}`);
  process.exit(0);
} catch (e) {
  await browser.close().catch(() => {});
  if (results.length) console.log(`sdk: ${results.join('\nsdk: ')}`);
  fail(e.message);
}
