// The real service, as the integration tests use it: tokens signed with its
// secret, publishing with its API key, and a look at what it still holds.

import { createHmac, randomUUID } from 'node:crypto';

/** A client JWT for `recipient`, signed HS256 with `secret`, expiring `lifetimeSecs` from now (negative: expired). */
export function mintToken(secret, recipient, lifetimeSecs = 600) {
  const part = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const body = `${part({ alg: 'HS256', typ: 'JWT' })}.${part({ sub: recipient, exp: Math.floor(Date.now() / 1000) + lifetimeSecs })}`;
  return `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`;
}

/**
 * Publishes one notification per text to `recipient`; returns their ids, in order. As a
 * publisher should, it names each notification's id and publishes again, a few times,
 * when the service answers 503 (its log briefly slow, on a busy test machine): the ids
 * make the retry safe.
 */
export async function publish(base, apiKey, recipient, texts) {
  const notifications = texts.map((text) => ({ id: randomUUID(), recipient, payload: { text } }));
  for (let attempt = 1; ; attempt++) {
    const response = await fetch(`${base}/v1/notifications`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${apiKey}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ notifications }),
    });
    if (response.status === 202) return (await response.json()).ids;
    if (response.status !== 503 || attempt === 5) throw new Error(`publishing answered ${response.status}: ${await response.text()}`);
    await new Promise((resolve) => setTimeout(resolve, 1000 * Number(response.headers.get('retry-after') ?? 1)));
  }
}

/** The ids the service still holds for `recipient` (not acknowledged), read by a poll that acknowledges nothing. */
export async function held(base, secret, recipient) {
  const response = await fetch(`${base}/v1/connect/poll?wait=0`, { headers: { Authorization: `Bearer ${mintToken(secret, recipient)}` } });
  if (response.status !== 200) throw new Error(`a poll answered ${response.status}: ${await response.text()}`);
  return (await response.json()).notifications.map((n) => n.id);
}

/** Waits until `condition()` (maybe async) holds, for up to `ms`; fails naming `what`. */
export async function waitFor(what, condition, ms = 15_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const last = await condition();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`within ${ms / 1000} s: ${typeof what === 'function' ? await what() : what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
