// One captured valid token, replayed on many connections, each declaring a
// large body and sending it slowly: the bodies held at once stay within
// --max-body-memory; beyond it requests are answered 503 with Retry-After
// at once and their connections closed; the memory is given back when the
// connections go; real webhooks are still accepted.

import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { request } from 'undici';
import { encodeBody, sampleWebhook } from '../../src/livekit/samples.ts';
import { authorize, postSigned, startDaemon } from '../helpers/daemon.ts';
import { parsePrometheusText, sampleValue } from '../helpers/prometheus-text.ts';

const DECLARED = 1024 * 1024;
const SENT = 256 * 1024;

async function scrape(url: string): Promise<Map<string, unknown>> {
  const response = await request(`${url}/metrics`);
  return parsePrometheusText(await response.body.text()) as Map<string, unknown>;
}

function openReplay(port: number, token: string): Promise<{ socket: Socket; answer: Promise<string> }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(`POST /webhook HTTP/1.1\r\nHost: x\r\nAuthorization: ${token}\r\nContent-Length: ${DECLARED}\r\n\r\n`);
      socket.write(Buffer.alloc(SENT, 0x20));
      let text = '';
      const answer = new Promise<string>((done) => {
        socket.on('data', (chunk) => (text += chunk.toString('latin1')));
        socket.on('close', () => done(text));
        socket.on('error', () => done(text));
      });
      resolve({ socket, answer });
    });
    socket.once('error', reject);
  });
}

test('replayed tokens declaring large bodies: held bytes stay within --max-body-memory, the rest is refused 503 at once', { timeout: 90_000 }, async (t) => {
  const daemon = await startDaemon({ args: ['--max-body-memory', '4M'] });
  t.after(() => daemon.child.kill('SIGKILL'));
  // A captured token: valid signature and expiry, for some other body.
  const token = authorize(encodeBody(sampleWebhook('room_started', 'captured')));

  const replays = [];
  for (let index = 0; index < 60; index++) replays.push(await openReplay(daemon.port, token));
  await new Promise((resolve) => setTimeout(resolve, 1_000));

  const families = await scrape(daemon.url);
  const held = sampleValue(families as never, 'control_plane_held_body_bytes')!;
  t.diagnostic(`60 replays declaring 1 MiB and sending 256 KiB each: ${(held / 1024 / 1024).toFixed(2)} MiB held (budget 4 MiB)`);
  assert.ok(held <= 4 * 1024 * 1024 + SENT, `held ${held} bytes`);
  assert.ok(sampleValue(families as never, 'control_plane_body_budget_refusals_total')! > 0, 'some were refused for the budget');

  // The refused ones were answered 503 with Retry-After and closed, not left hanging.
  const settled = await Promise.all(replays.map(({ answer }) => Promise.race([answer, new Promise<string>((resolve) => setTimeout(() => resolve(''), 200))])));
  const refused = settled.filter((text) => text.startsWith('HTTP/1.1 503'));
  assert.ok(refused.length >= 40, `${refused.length} refused`);
  for (const text of refused) {
    assert.match(text, /Retry-After: [1-5]\r\n/i);
    assert.match(text, /"error":"too_much_body_in_memory"/);
  }

  // A real webhook still goes through while the survivors are held.
  const real = await postSigned(daemon.url, encodeBody(sampleWebhook('room_started', 'real-room')));
  assert.equal(real.status, 200);

  for (const { socket } of replays) socket.destroy();
  await new Promise((resolve) => setTimeout(resolve, 500));
  assert.equal(sampleValue((await scrape(daemon.url)) as never, 'control_plane_held_body_bytes'), 0, 'the memory is given back when the connections close');
});
