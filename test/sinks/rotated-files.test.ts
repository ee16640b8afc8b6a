import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseRotatedName, rotatedNamePattern, rotationStamp } from '../../src/sinks/rotated-files.ts';

test('the rotation stamp is the UTC second, compact ISO 8601', () => {
  assert.equal(rotationStamp(new Date('2025-01-02T03:04:05.999Z')), '20250102T030405Z');
  assert.equal(rotationStamp(new Date('2025-12-31T23:59:59.000+01:00')), '20251231T225959Z');
});

test('recognises exactly its own names: plain, same-second counter, compressed, in progress', () => {
  const pattern = rotatedNamePattern('control-plane.log');
  assert.deepEqual(parseRotatedName(pattern, 'control-plane.log.20250102T030405Z'), { stem: 'control-plane.log.20250102T030405Z', stamp: '20250102T030405Z', counter: 0, kind: 'plain' });
  assert.deepEqual(parseRotatedName(pattern, 'control-plane.log.20250102T030405Z-12.gz'), { stem: 'control-plane.log.20250102T030405Z-12', stamp: '20250102T030405Z', counter: 12, kind: 'gz' });
  assert.equal(parseRotatedName(pattern, 'control-plane.log.20250102T030405Z.gz.partial')?.kind, 'partial');
  for (const foreign of [
    'control-plane.log', // the live file
    'control-plane.log.1', // logrotate
    'control-plane.log.3.gz', // logrotate, compressed
    'control-plane.log-20250102', // logrotate dateext
    'control-plane.log-20250102.gz',
    'control-plane.log.20250102T030405Z-0', // we never write -0
    'control-plane.log.20250102T030405Z-01',
    'control-plane.log.20250102T030405', // no Z
    'control-plane.log.20250102T030405Z.bz2',
    'control-plane.log.20250102T030405Z.gz.tmp',
    'xcontrol-plane.log.20250102T030405Z',
    'control-plane.logx20250102T030405Z', // the dot is literal
  ]) {
    assert.equal(parseRotatedName(pattern, foreign), null, foreign);
  }
});

test('a base name with regular-expression characters is matched literally', () => {
  const pattern = rotatedNamePattern('a+b(1).log');
  assert.ok(parseRotatedName(pattern, 'a+b(1).log.20250102T030405Z'), 'own name recognised');
  assert.equal(parseRotatedName(pattern, 'aab1.log.20250102T030405Z'), null);
});
