import assert from 'node:assert/strict';
import { test } from 'node:test';
import { redactPhoneNumbers, redactPhoneNumbersInText } from '../../src/obs/redact.ts';
import fc from 'fast-check';
import { secondsToTimestamp } from '../../src/obs/livekit.ts';
import { encodeDiagnostic, encodeLine, EVENT_TYPES, FIELD_ORDER, formatSeconds, formatTimestamp, LineEncoder, type ObsEvent } from '../../src/obs/schema.ts';

const TS = Date.UTC(2026, 10, 30, 9, 28, 1, 7);

test('common fields come first, in the contract order, then known fields in FIELD_ORDER', () => {
  const event = { level: 'info', event_type: 'call.ended', session_id: 'RM_1', talk_ms: 5, reason: 'client_initiated', webhook_id: 'EV_1' } as ObsEvent;
  const line = encodeLine(event, 7, TS);
  assert.equal(line, '{"ts":"2026-11-30T09:28:01.007Z","seq":7,"level":"info","component":"control_plane","event_type":"call.ended","session_id":"RM_1","webhook_id":"EV_1","reason":"client_initiated","talk_ms":5}\n');
  assert.deepEqual(Object.keys(JSON.parse(line)), ['ts', 'seq', 'level', 'component', 'event_type', 'session_id', 'webhook_id', 'reason', 'talk_ms']);
});

test('null session_id, booleans, arrays, and strings needing escapes', () => {
  const event = { level: 'warn', event_type: 'control_plane.started', session_id: null, key_ids: ['a', 'b'], answered: false, detail: 'quote " newline \n unicode é \u2028' } as ObsEvent;
  const parsed = JSON.parse(encodeLine(event, 1, TS));
  assert.equal(parsed.session_id, null);
  assert.deepEqual(parsed.key_ids, ['a', 'b']);
  assert.equal(parsed.answered, false);
  assert.equal(parsed.detail, 'quote " newline \n unicode é \u2028');
  assert.equal(encodeLine(event, 1, TS).split('\n').length, 2, 'one line, one terminating newline');
});

test('fields outside the schema are never written (no raw payload can leak)', () => {
  const event = { level: 'info', event_type: 'livekit.room.created', session_id: 'RM_1', turnPassword: 'x', room: { sid: 'RM_1' } } as unknown as ObsEvent;
  assert.doesNotMatch(encodeLine(event, 1, TS), /turnPassword|"room"/);
});

test('FIELD_ORDER lists each field once', () => {
  assert.equal(new Set(FIELD_ORDER).size, FIELD_ORDER.length);
});

test('redaction keeps +, two first and two last digits of E.164 numbers in phone fields only', () => {
  const event = { level: 'info', event_type: 'call.started', session_id: 'RM_1', from: '+31201234589', to: '+14155550123', participant_identity: 'sip_+14155550123', room_name: 'call_+14155550123_k2Zq', sip_call_id: 'SCL_+14155550123' } as ObsEvent;
  const parsed = JSON.parse(encodeLine(event, 1, TS, redactPhoneNumbers));
  assert.equal(parsed.from, '+31*******89');
  assert.equal(parsed.to, '+14*******23');
  assert.equal(parsed.participant_identity, 'sip_+14*******23');
  assert.equal(parsed.room_name, 'call_+14*******23_k2Zq');
  assert.equal(parsed.sip_call_id, 'SCL_+14155550123', 'ids are not phone fields');
  const egress = { level: 'warn', event_type: 'provider.event', session_id: 'RM_1', error: 'cannot write call_+14155550123.ogg', detail: 'POST /x/+14155550123' } as ObsEvent;
  const free = JSON.parse(encodeLine(egress, 1, TS, redactPhoneNumbers));
  assert.equal(free.error, 'cannot write call_+14*******23.ogg', 'free text that quotes a number is masked too');
  assert.equal(free.detail, 'POST /x/+14*******23');
});

test('in text, a + number needs 7 to 15 digits', () => {
  assert.equal(redactPhoneNumbersInText('room-42'), 'room-42');
  assert.equal(redactPhoneNumbersInText('+123456'), '+123456', 'six digits is too short');
  assert.equal(redactPhoneNumbersInText('+1234567890123456'), '+1234567890123456', 'sixteen digits is too long');
  assert.equal(redactPhoneNumbersInText('+1234567'), '+12***67');
  assert.equal(redactPhoneNumbersInText('a +441234567890 and +33612345678'), 'a +44********90 and +33*******78');
});

test('formatTimestamp equals toISOString, also for runs of times within one second and across years', () => {
  const check = (ms: number): void => assert.equal(formatTimestamp(ms), new Date(ms).toISOString(), `at ${ms}`);
  fc.assert(
    fc.property(fc.integer({ min: -62_198_755_200_000, max: 253_402_300_799_999 }), fc.array(fc.integer({ min: -1500, max: 1500 }), { maxLength: 8 }), (start, steps) => {
      check(start);
      for (const step of steps) check(start + step);
    }),
    { numRuns: 2000 },
  );
  // Fractions of a millisecond are cut like toISOString cuts them, cached second or not.
  for (const ms of [TS, TS + 0.5, TS + 999.9, TS + 1000, -1, -0.5, 0, 253_402_300_799_999, 253_402_300_800_000, -62_198_755_200_001]) check(ms);
});

test('secondsToTimestamp formats LiveKit createdAt seconds, refusing what is not a date', () => {
  assert.equal(secondsToTimestamp(1_764_494_881n), '2025-11-30T09:28:01.000Z');
  assert.equal(secondsToTimestamp(1_764_494_881n), '2025-11-30T09:28:01.000Z', 'the cached second');
  assert.equal(secondsToTimestamp(1_764_494_882n), '2025-11-30T09:28:02.000Z');
  assert.equal(secondsToTimestamp(0n), undefined);
  assert.equal(secondsToTimestamp(253_402_300_800n), undefined);
});

/** JSON.stringify, with the three Unicode line breaks it leaves raw escaped as the encoder escapes them. */
function referenceJson(value: unknown): string {
  return JSON.stringify(value).replace(/[\u2028\u2029\u0085]/g, (character) => `\\u${character.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

test('LineEncoder writes exactly what JSON.stringify writes for the same fields in order, whatever the values, line breaks escaped', () => {
  const text = fc.oneof(
    fc.string(),
    fc.string({ unit: 'binary' }),
    fc.string({ unit: 'grapheme' }),
    fc.constantFrom('', '"', '\\', '\u2028', '\u2029', '\u0085', 'room\u2028name\u2029x\u0085y', '\ud800', 'a\u007fb', '+14155550123'),
  );
  const value = fc.oneof(text, fc.double(), fc.integer(), fc.boolean(), fc.array(text, { maxLength: 3 }));
  const fields = fc.dictionary(fc.constantFrom(...FIELD_ORDER), value, { maxKeys: 8 });
  const event = fc.record({ level: fc.constantFrom('info', 'warn', 'error'), event_type: fc.constantFrom(...EVENT_TYPES), session_id: fc.option(text, { nil: null }), fields });
  fc.assert(
    fc.property(fc.array(event, { minLength: 1, maxLength: 4 }), fc.nat(), (events, seq) => {
      const encoder = new LineEncoder();
      let expected = '';
      events.forEach(({ level, event_type, session_id, fields }, index) => {
        const obs = { level, event_type, session_id, ...fields } as ObsEvent;
        encoder.append(obs, seq + index, '2026-11-30T09:28:01.007Z');
        const reference: Record<string, unknown> = { ts: '2026-11-30T09:28:01.007Z', seq: seq + index, level, component: 'control_plane', event_type, session_id };
        for (const name of FIELD_ORDER) if (fields[name] !== undefined) reference[name] = fields[name];
        expected += `${referenceJson(reference)}\n`;
        assert.equal(encodeLine(obs, seq + index, TS), `${referenceJson({ ...reference, ts: new Date(TS).toISOString() })}\n`);
      });
      const written = encoder.bytes().toString('utf8');
      assert.equal(written, expected);
      // Whatever splits on Unicode line breaks sees the same lines as a split on \n.
      assert.equal(written.split(/\r\n|[\n\v\f\r\u0085\u2028\u2029]/).length, events.length + 1);
    }),
    { numRuns: 3000 },
  );
});

test('U+2028, U+2029 and U+0085 in a room name are written escaped and read back unchanged', () => {
  const name = 'lobby\u2028floor\u20292\u0085east';
  const line = encodeLine({ level: 'info', event_type: 'livekit.room.created', session_id: 'RM_1', room_name: name, key_ids: ['k\u2028'] } as ObsEvent, 1, TS);
  assert.doesNotMatch(line, /[\u2028\u2029\u0085]/);
  assert.match(line, /"room_name":"lobby\\u2028floor\\u20292\\u0085east"/);
  assert.equal(JSON.parse(line).room_name, name);
  assert.deepEqual(JSON.parse(line).key_ids, ['k\u2028']);
});

test('LineEncoder grows for a group larger than its buffer, and clear() empties it', () => {
  const encoder = new LineEncoder();
  const big = { level: 'info', event_type: 'provider.event', session_id: 'RM_1', detail: 'x'.repeat(3 * 1024 * 1024), error: 'é'.repeat(100_000) } as ObsEvent;
  encoder.append(big, 1, '2026-11-30T09:28:01.007Z');
  encoder.append(big, 2, '2026-11-30T09:28:01.007Z');
  const lines = encoder.bytes().toString('utf8').split('\n');
  assert.equal(lines.length, 3);
  assert.equal(JSON.parse(lines[1]!).detail.length, 3 * 1024 * 1024);
  encoder.clear();
  assert.equal(encoder.bytes().length, 0);
  encoder.append({ level: 'info', event_type: 'webhook.received', session_id: null } as ObsEvent, 3, '2026-11-30T09:28:01.007Z');
  assert.equal(encoder.bytes().toString('utf8'), '{"ts":"2026-11-30T09:28:01.007Z","seq":3,"level":"info","component":"control_plane","event_type":"webhook.received","session_id":null}\n');
});

test('formatSeconds equals toISOString for every whole second with a four-digit year', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 253_402_300_799 }), fc.array(fc.integer({ min: -90_000, max: 90_000 }), { maxLength: 6 }), (start, steps) => {
      for (const seconds of [start, ...steps.map((step) => start + step)]) {
        if (seconds < 1 || seconds > 253_402_300_799) continue;
        assert.equal(formatSeconds(seconds), new Date(seconds * 1000).toISOString(), `at ${seconds}`);
      }
    }),
    { numRuns: 3000 },
  );
  for (const seconds of [1, 59, 60, 3599, 3600, 86_399, 86_400, 951_782_400, 253_402_300_799]) assert.equal(formatSeconds(seconds), new Date(seconds * 1000).toISOString());
});

test('priorityPrefix: each line starts with its level as journald reads it; without it, bare JSON', () => {
  const events: ObsEvent[] = [
    { level: 'info', event_type: 'webhook.received', session_id: null },
    { level: 'warn', event_type: 'provider.event', session_id: 'RM_1', provider: 'sip' },
    { level: 'error', event_type: 'control_plane.warning', session_id: null, detail: 'x' },
  ];
  const prefixed = new LineEncoder({ priorityPrefix: true });
  const bare = new LineEncoder();
  events.forEach((event, index) => {
    prefixed.append(event, index + 1, '2026-11-30T09:28:01.007Z');
    bare.append(event, index + 1, '2026-11-30T09:28:01.007Z');
  });
  const prefixedLines = prefixed.bytes().toString('utf8').split('\n').slice(0, -1);
  const bareLines = bare.bytes().toString('utf8').split('\n').slice(0, -1);
  assert.deepEqual(prefixedLines.map((line) => line.slice(0, 3)), ['<6>', '<4>', '<3>']);
  assert.deepEqual(prefixedLines.map((line) => line.slice(3)), bareLines, 'the prefix is all that differs');
  for (const line of bareLines) JSON.parse(line);
});

test('a diagnostic line is encoded like an output line, without seq; the journal gets its priority prefix', () => {
  const detail = 'output /var/log/x: ENOSPC "disk full" \\ tab\there';
  const line = encodeDiagnostic(detail, TS, 'warn', false);
  assert.equal(
    line,
    `${JSON.stringify({ ts: new Date(TS).toISOString(), level: 'warn', component: 'control_plane', event_type: 'control_plane.diagnostic', session_id: null, detail })}\n`,
  );
  assert.equal(encodeDiagnostic(detail, TS, 'error', true), `<3>${encodeDiagnostic(detail, TS, 'error', false)}`);
  // The Unicode line breaks JSON.stringify leaves raw are escaped, as in the output.
  const broken = encodeDiagnostic('a\u2028b\u0085c', TS, 'warn', false);
  assert.equal(broken.split(/[\n\u2028\u2029\u0085]/).length, 2);
  assert.equal(JSON.parse(broken).detail, 'a\u2028b\u0085c');
  assert.equal('seq' in JSON.parse(broken), false);
});
