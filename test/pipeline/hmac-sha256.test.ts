// The fast path (hmac-fast-path.ts) computes HS256 signatures with two one-shot SHA-256 hashes
// (RFC 2104) instead of createHmac, for speed: it must be HMAC-SHA256,
// bit for bit, for every key length class (empty, short, exactly one
// block, longer than a block: hashed first) and message length.

import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import fc from 'fast-check';
import { equalInConstantTime, hmacKey, hmacSha256Base64url } from '../../src/pipeline/hmac-fast-path.ts';

const latin1Text = fc.uint8Array({ maxLength: 2000 }).map((bytes) => Buffer.from(bytes).toString('latin1'));

test('equals createHmac for keys of 0..200 bytes and messages of 0..2000 bytes (property)', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), latin1Text, (secret, message) => {
      const expected = createHmac('sha256', secret).update(message, 'latin1').digest('base64url');
      assert.equal(hmacSha256Base64url(hmacKey(secret), message), expected);
    }),
    { numRuns: 2000, seed: 6 },
  );
});

test('equals createHmac at the block-size boundaries of key and message', () => {
  for (const keyLength of [0, 1, 31, 32, 63, 64, 65, 128, 129]) {
    const secret = randomBytes(keyLength);
    for (const messageLength of [0, 1, 55, 56, 63, 64, 65, 119, 120, 128, 300]) {
      const message = randomBytes(messageLength).toString('latin1');
      assert.equal(hmacSha256Base64url(hmacKey(secret), message), createHmac('sha256', secret).update(message, 'latin1').digest('base64url'), `key ${keyLength} B, message ${messageLength} B`);
    }
  }
});

test('RFC 4231 test case 2 (key "Jefe")', () => {
  const mac = hmacSha256Base64url(hmacKey(Buffer.from('Jefe')), 'what do ya want for nothing?');
  assert.equal(Buffer.from(mac, 'base64url').toString('hex'), '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843');
});

test('equalInConstantTime agrees with === for any two strings, equal lengths or not', () => {
  const signature = fc.stringMatching(/^[A-Za-z0-9_-]{0,44}$/);
  fc.assert(
    fc.property(signature, signature, (a, b) => {
      assert.equal(equalInConstantTime(a, b), a === b);
      assert.equal(equalInConstantTime(a, a), true);
    }),
  );
  // A difference in the first or the last character only.
  const mac = 'x'.repeat(42);
  assert.equal(equalInConstantTime(`a${mac}`, `b${mac}`), false);
  assert.equal(equalInConstantTime(`${mac}a`, `${mac}b`), false);
  assert.equal(equalInConstantTime('', ''), true);
});
