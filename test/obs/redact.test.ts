// --redact-phone-numbers (README, "What redaction recognises"): `from`
// and `to` are masked whatever their format; in identities, room names and
// free text, numbers are recognised with `+`, `00` or no prefix and with
// spaces, dashes, dots or parentheses between digits, while LiveKit ids,
// timestamps, durations and other numbers stay readable.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { maskPhoneNumber, redactPhoneNumbers, redactPhoneNumbersInText } from '../../src/obs/redact.ts';
import { encodeLine, type ObsEvent } from '../../src/obs/schema.ts';

describe('from and to hold a number: masked whatever the format', () => {
  const cases: Array<[string, string]> = [
    ['+31201234589', '+31*******89'],
    ['14155550123', '14*******23'],
    ['+31 20 123 4589', '+31*******89'],
    ['+1 (415) 555-0123', '+14*******23'],
    ['+1.415.555.0123', '+14*******23'],
    ['0031201234589', '0031*******89'],
    ['00 31 20 123 4589', '0031*******89'],
    ['(415) 555-0123', '41******23'],
    [' +14155550123 ', '+14*******23'],
    ['sip:+14155550123@trunk.example.com', '+14*******23'],
    ['+1234567', '+12***67'],
    ['4589', '****'],
    ['112', '***'],
    ['anonymous', 'anonymous'],
    ['', ''],
  ];
  for (const [value, expected] of cases) {
    test(`${JSON.stringify(value)} → ${JSON.stringify(expected)}`, () => {
      assert.equal(maskPhoneNumber(value), expected);
      assert.equal(redactPhoneNumbers(value, 'from'), expected);
      assert.equal(redactPhoneNumbers(value, 'to'), expected);
    });
  }
});

describe('numbers in identities, room names and free text', () => {
  const cases: Array<[string, string]> = [
    ['sip_+14155550123', 'sip_+14*******23'],
    ['sip_14155550123', 'sip_14*******23'],
    ['sip_0031201234589', 'sip_0031*******89'],
    ['call-+1-415-555-0123', 'call-+14*******23'],
    ['call_+14155550123_k2Zq', 'call_+14*******23_k2Zq'],
    ['Phone +31 20 123 4589', 'Phone +31*******89'],
    ['caller +1 (415) 555-0123 hung up', 'caller +14*******23 hung up'],
    ['call (415) 555-0123', 'call 41******23'],
    ['dial 415.555.0123 now', 'dial 41******23 now'],
    ['020-123 4589', '02******89'],
    ['0031 20 123 4589', '0031*******89'],
    ['+44 (0)20 7946 0958', '+44*********58'],
    ['a +441234567890 and +33612345678', 'a +44********90 and +33*******78'],
    ['cannot write s3://calls/call_+14155550123_k2Zq.ogg', 'cannot write s3://calls/call_+14*******23_k2Zq.ogg'],
    ['POST /x/+14155550123', 'POST /x/+14*******23'],
    ['tel:+14155550123', 'tel:+14*******23'],
    ['from 14155550123, to 31201234589.', 'from 14*******23, to 31*******89.'],
    // Two numbers with nothing but a space between read as one longer number: masked whole.
    ['+31 20 123 4589 14155550123', `+31${'*'.repeat(18)}23`],
  ];
  for (const [text, expected] of cases) {
    test(`${JSON.stringify(text)} → ${JSON.stringify(expected)}`, () => {
      assert.equal(redactPhoneNumbersInText(text), expected);
      for (const field of ['participant_identity', 'room_name', 'error', 'detail'] as const) assert.equal(redactPhoneNumbers(text, field), expected, field);
    });
  }

  const untouched: Array<[string, string]> = [
    ['a LiveKit room id', 'RM_mEWEa6xpaNRg'],
    ['a participant id with a run of digits', 'PA_x2345678923a'],
    ['an event id ending in digits', 'EV_abcd23456789'],
    ['an event id starting with digits', 'EV_234567892abc'],
    ['a SIP call id', 'SCL_9sUz7KcRnN4c'],
    ['an ISO timestamp', '2026-11-30T09:28:01.007Z'],
    ['a date and time with a space', 'at 2026-11-30 09:28:01'],
    ['a date', 'on 2026-11-30'],
    ['a European date', '30.11.2026'],
    ['a duration', 'took 74000ms'],
    ['a duration with a space', 'timed out after 30000 ms'],
    ['a duration in seconds', 'waited 3600 s'],
    ['a byte count', 'larger than --max-body 1048576 bytes'],
    ['an IPv4 address', 'dial tcp 192.168.100.200:5060: i/o timeout'],
    ['a decimal', 'ratio 1234567.891'],
    ['a version', 'livekit 1.9.11'],
    ['a number too short even with +', 'ext +123456'],
    ['a bare run longer than E.164', '+1234567890123456'],
    ['digits glued to letters', 'abc14155550123'],
    ['digits glued to letters on the right', '14155550123abc'],
    ['a short number', 'room-42'],
    ['eight digits without a prefix', 'order 12345678'],
    ['an already masked number', 'sip_+14*******23'],
    ['no digits at all', 'standard participant'],
    ['letters for digits', 'call 1-800-FLOWERS'],
    ['two separators in a row', 'call 415  555 0123'],
    ['a 00 number of six digits', 'dial 00123456'],
    ['non-ASCII digits', 'sip_\u0661\u0664\u0661\u0665\u0665\u0665\u0660\u0661\u0662\u0663'],
  ];
  for (const [name, text] of untouched) {
    test(`leaves ${name} alone: ${JSON.stringify(text)}`, () => assert.equal(redactPhoneNumbersInText(text), text));
  }
});

test('the encoder hands each phone field to the redactor with its name', () => {
  const seen: string[] = [];
  const event = { level: 'info', event_type: 'call.started', session_id: 'RM_1', from: '1', to: '2', participant_identity: '3', room_name: '4', sip_call_id: '5', error: '6', detail: '7' } as ObsEvent;
  encodeLine(event, 1, 0, (value, field) => {
    seen.push(`${field}=${value}`);
    return value;
  });
  assert.deepEqual(seen.sort(), ['detail=7', 'error=6', 'from=1', 'participant_identity=3', 'room_name=4', 'to=2']);
});

test('the issue\'s values are masked on a real line', () => {
  const event = {
    level: 'info',
    event_type: 'call.started',
    session_id: 'RM_mEWEa6xpaNRg',
    room_name: 'call-+1-415-555-0123',
    participant_identity: 'sip_0031201234589',
    from: '+1 (415) 555-0123',
    to: '+31 20 123 4589',
  } as ObsEvent;
  const line = encodeLine(event, 1, 0, redactPhoneNumbers);
  const parsed = JSON.parse(line) as Record<string, unknown>;
  assert.equal(parsed.from, '+14*******23');
  assert.equal(parsed.to, '+31*******89');
  assert.equal(parsed.participant_identity, 'sip_0031*******89');
  assert.equal(parsed.room_name, 'call-+14*******23');
  assert.equal(parsed.session_id, 'RM_mEWEa6xpaNRg');
  assert.equal(encodeLine({ ...event, from: '14155550123' }, 1, 0, redactPhoneNumbers).includes('4155550'), false);
});

describe('properties', () => {
  const digit = fc.constantFrom(...'0123456789');
  /** A phone number's digits: 7 to 15, not starting with 0 (a country code). */
  const e164 = fc.tuple(fc.constantFrom(...'123456789'), fc.array(digit, { minLength: 8, maxLength: 14 })).map(([first, rest]) => first + rest.join(''));
  /** The digits written in groups of 1-4 with one space, dash or dot between, some groups in parentheses. */
  const formatted = (digits: string) =>
    fc.array(fc.tuple(fc.integer({ min: 1, max: 4 }), fc.constantFrom(' ', '-', '.', ''), fc.boolean()), { minLength: 1, maxLength: 15 }).map((shape) => {
      let out = '';
      let at = 0;
      for (const [size, separator, parenthesised] of shape) {
        if (at >= digits.length) break;
        const group = digits.slice(at, at + size);
        at += size;
        out += (out === '' ? '' : separator === '' && !parenthesised ? ' ' : separator) + (parenthesised ? `(${group})` : group);
      }
      if (at < digits.length) out += ` ${digits.slice(at)}`;
      return out;
    });
  const written = e164.chain((digits) => fc.tuple(fc.constant(digits), fc.constantFrom('+', '00', ''), formatted(digits)));
  const around = fc.constantFrom('', ' ', '_', '-', '/', ':', '(', ')', ', ', 'sip_', 'call_', 'Phone ', 'x/');
  const after = fc.constantFrom('', ' ', '_', '-', '/', ',', '.', ')', '_k2Zq', ' hung up', '.ogg');

  test('a number written any recognised way, wherever it stands, leaves at most four of its digits', () => {
    fc.assert(
      fc.property(written, around, after, ([digits, prefix, text], before, behind) => {
        const input = `${before}${prefix}${text}${behind}`;
        const output = redactPhoneNumbersInText(input);
        const kept = output.replace(/\D/g, '');
        const inputDigitsAround = (before + behind).replace(/\D/g, '');
        // Only the first two and last two digits (and the 00 prefix) may remain.
        assert.ok(kept.length <= 4 + (prefix === '00' ? 2 : 0) + inputDigitsAround.length, `${JSON.stringify(input)} → ${JSON.stringify(output)}`);
        assert.ok(!output.includes(digits.slice(2, -2)), `${JSON.stringify(input)} → ${JSON.stringify(output)}`);
      }),
      { numRuns: 3000, seed: 20 },
    );
  });

  test('from and to: the output is the prefix, two digits, stars and two digits, whatever the input', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), (value) => {
        const output = maskPhoneNumber(value);
        const digits = value.replace(/\D/g, '');
        if (digits === '') return assert.equal(output, value);
        assert.match(output, /^(\+|00)?(\d{2}\*+\d{2}|\**)$/, `${JSON.stringify(value)} → ${JSON.stringify(output)}`);
        assert.ok(output.replace(/\D/g, '').length <= 6);
      }),
      { numRuns: 2000, seed: 21 },
    );
  });

  const base57 = '23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';
  const letter = fc.constantFrom(...base57.replace(/\d/g, ''));
  const liveKitId = fc
    .tuple(fc.constantFrom('RM_', 'PA_', 'TR_', 'EV_', 'EG_', 'IN_', 'SCL_', 'ST_', 'SDR_', 'AJ_'), fc.array(fc.constantFrom(...base57), { minLength: 11, maxLength: 11 }), letter, fc.nat(11))
    .map(([prefix, chars, oneLetter, at]) => {
      // LiveKit's ids are 12 base57 characters; one is made a letter (an all-digit id has odds of about 1e-10).
      chars.splice(at, 0, oneLetter);
      return prefix + chars.join('');
    });

  test('LiveKit ids, ISO timestamps and durations are never touched', () => {
    const timestamp = fc.date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2099-12-31T23:59:59Z'), noInvalidDate: true }).map((date) => date.toISOString());
    const duration = fc.tuple(fc.nat(10_000_000), fc.constantFrom('ms', ' ms', 's', ' s', 'm')).map(([value, unit]) => `${value}${unit}`);
    fc.assert(
      fc.property(fc.array(fc.oneof(liveKitId, timestamp, duration, fc.constantFrom(' ', '_', '-', ', ', ' at ')), { maxLength: 6 }), (parts) => {
        const text = parts.join(' ');
        assert.equal(redactPhoneNumbersInText(text), text);
      }),
      { numRuns: 3000, seed: 22 },
    );
  });

  test('redacting text twice changes nothing more', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 60 }), written.map(([, prefix, text]) => `x ${prefix}${text} y`)), (text) => {
        const once = redactPhoneNumbersInText(text);
        assert.equal(redactPhoneNumbersInText(once), once);
      }),
      { numRuns: 3000, seed: 23 },
    );
  });

  test('text without digits is returned as it is', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 80 }).map((text) => text.replace(/\d/g, '')), (text) => assert.equal(redactPhoneNumbersInText(text), text)),
      { numRuns: 1000, seed: 24 },
    );
  });
});
