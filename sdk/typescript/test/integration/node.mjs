#!/usr/bin/env node
// node.mjs: the built SDK (dist/notif.js) in Node, against a real notifd.
//
//   NOTIF_SDK_JWT_SECRET=... NOTIF_SDK_API_KEY=... node --experimental-websocket test/integration/node.mjs <base-url>
//
// Over each transport, as a recipient of its own: 10 notifications in order,
// each once, acknowledged (the service holds nothing after); then a client
// whose first token is refused gets a fresh one through getToken.
// Node 20 has WebSocket only with --experimental-websocket (22 and later, always).

import { connect } from '../../dist/notif.js';
import { held, mintToken, publish, waitFor } from './service.mjs';

const [base] = process.argv.slice(2);
const secret = process.env.NOTIF_SDK_JWT_SECRET;
const apiKey = process.env.NOTIF_SDK_API_KEY;
// Where to publish, when not where clients connect (the distributed roles).
const publishUrl = process.env.NOTIF_SDK_PUBLISH_URL ?? base;
if (!base || !secret || !apiKey) fail('usage: NOTIF_SDK_JWT_SECRET=... NOTIF_SDK_API_KEY=... node test/integration/node.mjs <base-url>', 2);
if (typeof WebSocket !== 'function') fail('no global WebSocket: run node with --experimental-websocket', 2);
setTimeout(() => fail('the run took longer than 60 s'), 60_000).unref();

function fail(message, code = 1) {
  console.error(`sdk in node: FAILED: ${message}`);
  process.exit(code);
}

const suffix = Date.now().toString(36);
const results = [];

async function receive(transport, recipient, getToken) {
  const record = { states: [], got: [], errors: [] };
  const client = connect({ url: base, getToken, transports: [transport], backoff: { initialMs: 100, maxMs: 1_000 } });
  client.on('state', (s) => record.states.push(s.state === 'reconnecting' ? `reconnecting (${s.reason})` : s.state));
  client.on('error', (e) => record.errors.push(e.message));
  client.on('notification', (n) => void record.got.push(n.id));
  const describe = () => `${transport}: states ${record.states.join(' > ')}; got ${record.got.length}; errors ${record.errors.join(' | ')}`;
  try {
    await waitFor(describe, () => client.state.state === 'connected');
    const ids = await publish(publishUrl, apiKey, recipient, Array.from({ length: 10 }, (_, i) => `${transport} ${i + 1}`));
    await waitFor(describe, () => record.got.length >= ids.length);
    if (record.got.join() !== ids.join()) throw new Error(`${transport}: got ${record.got.join()}, not ${ids.join()}`);
    await waitFor(async () => `${transport}: the service still holds ${await held(base, secret, recipient)}`,
      async () => (await held(base, secret, recipient)).length === 0);
  } finally {
    client.close();
  }
  return record;
}

try {
  for (const transport of ['ws', 'sse', 'poll']) {
    const recipient = `node-${transport}-${suffix}`;
    await receive(transport, recipient, () => mintToken(secret, recipient));
    results.push(`${transport}: 10 in order, acknowledged`);
  }
  let calls = 0;
  const recipient = `node-token-${suffix}`;
  await receive('sse', recipient, () => mintToken(secret, recipient, ++calls === 1 ? -120 : 600));
  if (calls !== 2) throw new Error(`getToken was called ${calls} times, not 2`);
  results.push('an expired token replaced through getToken');
} catch (e) {
  fail(e.message);
}
console.log(`sdk in node: ok (${results.join('; ')})`);
