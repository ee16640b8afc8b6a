// The HTTP contract (docs/contract.md#http-answers) against the real program (sources, or the
// executable when CONTROL_PLANE_BIN is set).

import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { encodeBody, sampleWebhook } from '../../src/livekit/samples.ts';
import { signWebhook } from '../../src/livekit/sign.ts';
import { authorize, type Daemon, type ObsLine, OTHER_KEY, postWebhook, startDaemon, TEST_KEY } from '../helpers/daemon.ts';

async function post(daemon: Daemon, body: string | Buffer, headers: Record<string, string> = {}) {
  const answer = await postWebhook(daemon.url, body, headers);
  return { ...answer, json: answer.text ? (JSON.parse(answer.text) as Record<string, unknown>) : undefined };
}

async function postSigned(daemon: Daemon, event: Record<string, unknown>, headers: Record<string, string> = {}) {
  const body = encodeBody(event);
  return post(daemon, body, { authorization: authorize(body), ...headers });
}

/** The lines written after the first `count` lines. */
function linesAfter(daemon: Daemon, count: number): ObsLine[] {
  return daemon.lines().slice(count);
}

function assertSeqContiguous(lines: ObsLine[]): void {
  lines.forEach((line, index) => assert.equal(line.seq, index + 1, `seq ${line.seq} at line ${index + 1}`));
}

describe('the daemon over HTTP', () => {
  let daemon: Daemon;
  before(async () => {
    daemon = await startDaemon({ args: ['--max-body', '4K'] });
  });
  after(async () => {
    await daemon.stop();
  });

  test('starts with control_plane.started: version, real listen port, sink, key ids, never the secret', () => {
    const [started] = daemon.lines();
    assert.equal(started!.event_type, 'control_plane.started');
    assert.equal(started!.seq, 1);
    assert.equal(started!.level, 'info');
    assert.equal(started!.component, 'control_plane');
    assert.equal(started!.session_id, null);
    assert.match(String(started!.version), /^\d+\.\d+\.\d+/);
    assert.equal(started!.listen, `127.0.0.1:${daemon.port}`);
    assert.notEqual(daemon.port, 0);
    assert.equal(started!.sink, 'stdout');
    assert.deepEqual(started!.key_ids, [TEST_KEY.keyId]);
    assert.match(String(started!.ts), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });

  test('a signed webhook is answered 200 after its lines, in order: received, processing, livekit.*', async () => {
    const before = daemon.lines().length;
    const event = sampleWebhook('room_started', 'order-room');
    const answer = await postSigned(daemon, event);
    assert.equal(answer.status, 200);
    const lines = linesAfter(daemon, before);
    assert.deepEqual(lines.slice(0, 3).map((line) => line.event_type), ['webhook.received', 'webhook.processing', 'livekit.room.created']);
    const room = event.room as { sid: string; name: string };
    assert.equal(lines[0]!.session_id, null, 'nothing unverified names a session');
    assert.equal(lines[1]!.webhook_id, event.id);
    assert.equal(lines[1]!.livekit_event, 'room_started');
    assert.equal(lines[2]!.session_id, room.sid);
    assert.equal(lines[2]!.room_name, 'order-room');
    assert.equal(lines[2]!.room_sid, room.sid);
    assert.match(String(lines[2]!.event_created_at), /Z$/);
    for (const line of lines.slice(3)) assert.match(line.event_type, /^(session|call|provider)\./, 'derived lines come after the livekit.* line');
  });

  test('the content type is not checked', async () => {
    const answer = await postSigned(daemon, sampleWebhook('room_started'), { 'content-type': 'text/plain' });
    assert.equal(answer.status, 200);
  });

  test('a redelivered id is answered 200 and logged once as webhook.duplicate', async () => {
    const event = sampleWebhook('participant_joined', 'dup-room');
    const body = encodeBody(event);
    const token = authorize(body);
    assert.equal((await post(daemon, body, { authorization: token })).status, 200);
    const before = daemon.lines().length;
    const again = await post(daemon, body, { authorization: token });
    assert.equal(again.status, 200);
    const lines = linesAfter(daemon, before);
    assert.deepEqual(lines.map((line) => line.event_type), ['webhook.received', 'webhook.duplicate']);
    assert.equal(lines[1]!.webhook_id, event.id);
  });

  test('an event name this version does not know is answered 200 as livekit.event.unknown', async () => {
    const before = daemon.lines().length;
    const answer = await postSigned(daemon, { event: 'room_teleported', id: 'EV_unknownEvent1', createdAt: '1796029268', room: { sid: 'RM_tele', name: 'tele' } });
    assert.equal(answer.status, 200);
    const line = linesAfter(daemon, before).find((candidate) => candidate.event_type === 'livekit.event.unknown');
    assert.equal(line?.livekit_event, 'room_teleported');
  });

  test('raw payload credentials (turnPassword, streamKey) never reach the output', async () => {
    await postSigned(daemon, sampleWebhook('room_finished'));
    await postSigned(daemon, sampleWebhook('ingress_started'));
    assert.doesNotMatch(daemon.output(), /turn-secret-never-logged|stream-key-never-logged|turnPassword|streamKey/);
  });

  const unauthorized: Array<[string, () => { body: string; headers: Record<string, string> }, string]> = [
    ['no Authorization', () => ({ body: encodeBody(sampleWebhook('room_started')), headers: {} }), 'missing_authorization'],
    ['a token signed with another secret', () => {
      const body = encodeBody(sampleWebhook('room_started'));
      return { body, headers: { authorization: signWebhook(body, { keyId: TEST_KEY.keyId, secret: 'nope' }) } };
    }, 'bad_signature'],
    ['a key that is not configured', () => {
      const body = encodeBody(sampleWebhook('room_started'));
      return { body, headers: { authorization: signWebhook(body, OTHER_KEY) } };
    }, 'unknown_key'],
    ['an expired token', () => {
      const body = encodeBody(sampleWebhook('room_started'));
      return { body, headers: { authorization: signWebhook(body, TEST_KEY, { issuedAt: Math.floor(Date.now() / 1000) - 3600 }) } };
    }, 'expired'],
    ['a body that does not match the token', () => {
      const body = encodeBody(sampleWebhook('room_started'));
      return { body: body.replace('demo-room', 'evil-room'), headers: { authorization: authorize(body) } };
    }, 'body_hash_mismatch'],
  ];
  for (const [name, make, reason] of unauthorized) {
    test(`401 for ${name}, logged as webhook.rejected with reason ${reason}`, async () => {
      const { body, headers } = make();
      const before = daemon.lines().length;
      const answer = await post(daemon, body, headers);
      assert.equal(answer.status, 401);
      assert.deepEqual(answer.json, { error: reason });
      const lines = linesAfter(daemon, before);
      assert.deepEqual(lines.map((line) => line.event_type), ['webhook.received', 'webhook.rejected']);
      assert.equal(lines[1]!.http_status, 401);
      assert.equal(lines[1]!.reason, reason);
      assert.equal(lines[1]!.level, 'warn');
      assert.equal(lines[1]!.session_id, null);
    });
  }

  const badRequests: Array<[string, string, string]> = [
    ['a signed body that is not JSON', 'this is not json', 'body_not_json'],
    ['signed JSON that is not a webhook event', '{"hello":"world"}', 'not_a_webhook_event'],
    ['signed JSON with a field of the wrong type', '{"event":"room_started","room":42}', 'invalid_webhook_event'],
  ];
  for (const [name, body, reason] of badRequests) {
    test(`400 for ${name} (${reason})`, async () => {
      const before = daemon.lines().length;
      const answer = await post(daemon, body, { authorization: authorize(body) });
      assert.equal(answer.status, 400);
      assert.deepEqual(answer.json, { error: reason });
      const lines = linesAfter(daemon, before);
      assert.deepEqual(lines.map((line) => line.event_type), ['webhook.received', 'webhook.rejected']);
      assert.equal(lines[1]!.reason, reason);
      assert.equal(lines[1]!.http_status, 400);
    });
  }

  test('413 for a body over --max-body, declared by Content-Length', async () => {
    const body = 'x'.repeat(5000);
    const answer = await post(daemon, body, { authorization: authorize(body) });
    assert.equal(answer.status, 413);
    assert.deepEqual(answer.json, { error: 'body_too_large' });
    const last = daemon.lines().at(-1)!;
    assert.equal(last.event_type, 'webhook.rejected');
    assert.equal(last.http_status, 413);
  });

  test('413 for a chunked body that grows past --max-body', async () => {
    async function* chunks() {
      for (let index = 0; index < 10; index++) yield Buffer.alloc(1024, 120);
    }
    const response = await request(`${daemon.url}/webhook`, { method: 'POST', body: Readable.from(chunks()), headers: { authorization: 'x' } }).catch((error: Error) => error);
    // The server answers as soon as the limit is crossed and closes the connection; the client
    // may see the answer or, if it was still sending, a reset.
    if (!(response instanceof Error)) {
      assert.equal(response.statusCode, 413);
      await response.body.text();
    }
    await daemon.waitForLine((line) => line.event_type === 'webhook.rejected' && line.http_status === 413 && line.seq > 0);
  });

  test('GET and HEAD /health answer the exact healthy body', async () => {
    const got = await request(`${daemon.url}/health`);
    assert.equal(got.statusCode, 200);
    assert.equal(await got.body.text(), '{"status":"ok","component":"control_plane"}');
    const head = await request(`${daemon.url}/health`, { method: 'HEAD' });
    assert.equal(head.statusCode, 200);
    assert.equal(await head.body.text(), '');
  });

  test('404 for other paths and 405 for other methods, with a JSON error, logged', async () => {
    const missing = await request(`${daemon.url}/nope`);
    assert.equal(missing.statusCode, 404);
    assert.deepEqual(await missing.body.json(), { error: 'not_found' });
    const wrongMethod = await request(`${daemon.url}/webhook`, { method: 'GET' });
    assert.equal(wrongMethod.statusCode, 405);
    assert.equal(wrongMethod.headers.allow, 'POST');
    assert.deepEqual(await wrongMethod.body.json(), { error: 'method_not_allowed' });
    const healthPost = await request(`${daemon.url}/health`, { method: 'POST', body: '' });
    assert.equal(healthPost.statusCode, 405);
    await healthPost.body.text();
    const last = daemon.lines().at(-1)!;
    assert.equal(last.event_type, 'webhook.rejected');
    assert.equal(last.http_status, 405);
  });

  test('GET /metrics answers Prometheus text', async () => {
    const response = await request(`${daemon.url}/metrics`);
    assert.equal(response.statusCode, 200);
    assert.match(String(response.headers['content-type']), /^text\/plain/);
    assert.match(await response.body.text(), /^# TYPE control_plane_webhooks_total counter$/m);
  });

  test('seq has no gaps and every line is one JSON object with the common fields in order', () => {
    const lines = daemon.lines();
    assertSeqContiguous(lines);
    for (const line of lines) {
      assert.deepEqual(Object.keys(line).slice(0, 6), ['ts', 'seq', 'level', 'component', 'event_type', 'session_id']);
    }
    assert.doesNotMatch(daemon.output() + daemon.stderr, new RegExp(TEST_KEY.secret));
  });
});

describe('start-up and shutdown', () => {
  test('SIGTERM finishes the request in flight, logs control_plane.stopped and exits 0', async () => {
    const daemon = await startDaemon();
    const body = encodeBody(sampleWebhook('room_started'));
    // Send the headers and half the body, then SIGTERM, then the rest: the
    // request in flight must still be answered.
    const { Client } = await import('undici');
    const client = new Client(daemon.url);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    async function* slowBody() {
      yield Buffer.from(body.slice(0, 10));
      await gate;
      yield Buffer.from(body.slice(10));
    }
    const pending = client.request({ path: '/webhook', method: 'POST', body: Readable.from(slowBody()), headers: { authorization: authorize(body), 'content-length': String(body.length) } });
    await new Promise((resolve) => setTimeout(resolve, 200));
    daemon.child.kill('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 200));
    release();
    const response = await pending;
    assert.equal(response.statusCode, 200);
    await response.body.text();
    await client.close();
    const exit = await daemon.exited;
    assert.equal(exit.code, 0);
    const lines = daemon.lines();
    assert.equal(lines.at(-1)!.event_type, 'control_plane.stopped');
    assert.ok(lines.some((line) => line.event_type === 'livekit.room.created'));
    assertSeqContiguous(lines);
  });

  test('--dev starts with a warning line and accepts devkey/secret', async () => {
    const daemon = await startDaemon({ args: ['--dev'], env: { LIVEKIT_API_KEY: '', LIVEKIT_API_SECRET: '' } });
    try {
      const warningLine = daemon.lines().find((line) => line.event_type === 'control_plane.warning');
      assert.equal(warningLine?.level, 'warn');
      assert.match(String(warningLine?.detail), /--dev/);
      const body = encodeBody(sampleWebhook('room_started'));
      assert.equal((await post(daemon, body, { authorization: signWebhook(body, { keyId: 'devkey', secret: 'secret' }) })).status, 200);
    } finally {
      await daemon.stop();
    }
  });

  test('--insecure-skip-verify accepts an unsigned webhook and says so loudly', async () => {
    const daemon = await startDaemon({ args: ['--insecure-skip-verify'], env: { LIVEKIT_API_KEY: '', LIVEKIT_API_SECRET: '' } });
    try {
      assert.ok(daemon.lines().some((line) => line.event_type === 'control_plane.warning' && /insecure-skip-verify/.test(String(line.detail))));
      assert.match(daemon.stderr, /WARNING/);
      // stderr shares the journal with the output under systemd: it is JSON too, so `journalctl -o cat | jq` never stops.
      for (const line of daemon.stderr.trim().split('\n')) {
        const parsed = JSON.parse(line) as ObsLine;
        assert.equal(parsed.event_type, 'control_plane.diagnostic');
        assert.equal(parsed.component, 'control_plane');
      }
      assert.equal((await post(daemon, encodeBody(sampleWebhook('room_started')))).status, 200);
    } finally {
      await daemon.stop();
    }
  });
});

