// Fuzzing the real program over raw TCP: arbitrary methods, targets,
// versions, headers (duplicated, conflicting, invalid), framings and bodies.
// For every connection: at least one answer, every answer well-formed HTTP
// with a JSON body; every 4xx/5xx answer counted exactly once in
// control_plane_rejections_total; the process never crashes or reports an
// internal error, and its output stays valid OBS-00 with a gap-free seq.

import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { test } from 'node:test';
import fc from 'fast-check';
import { Client } from 'undici';
import { encodeBody, sampleWebhook, SAMPLE_EVENTS } from '../../src/livekit/samples.ts';
import { authorize, startDaemon, type Daemon } from '../helpers/daemon.ts';
import { parsePrometheusText, sumValues } from '../helpers/prometheus-text.ts';

const CASES = Number(process.env.FUZZ_HTTP_CASES ?? '500');
const CONCURRENCY = process.env.FUZZ_DEBUG ? 1 : 16;
const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);

interface FuzzCase {
  readonly method: string;
  readonly target: string;
  readonly version: string;
  readonly headers: ReadonlyArray<readonly [string, string]>;
  readonly body: Buffer;
  readonly framing: 'length' | 'chunked' | 'broken-chunks' | 'none' | 'short';
  readonly host: boolean;
  readonly eol: string;
}

const printable = (maxLength: number) => fc.string({ unit: 'grapheme-ascii', maxLength });

const bodyArbitrary = fc.oneof(
  fc.constant(Buffer.alloc(0)),
  fc.uint8Array({ maxLength: 2000 }).map((bytes) => Buffer.from(bytes)),
  fc.constantFrom(...SAMPLE_EVENTS).map((event) => Buffer.from(encodeBody(sampleWebhook(event, 'fuzz-room')))),
  fc.integer({ min: 17_000, max: 70_000 }).map((length) => Buffer.alloc(length, 0x7b)),
);
const framingArbitrary = fc.constantFrom<FuzzCase['framing']>('length', 'length', 'chunked', 'broken-chunks', 'none', 'short');

/** Requests that parse, with well-known headers used in odd ways: they reach the router and the webhook path. */
const plausibleCase: fc.Arbitrary<FuzzCase> = fc.record({
  method: fc.constantFrom('POST', 'POST', 'POST', 'GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'CONNECT', 'PROPFIND'),
  target: fc.constantFrom('/webhook', '/webhook', '/webhook', '/health', '/metrics', '/', '*', '/webhook?x=1', 'http://example.com/webhook', '/webhook/', '/%2e%2e/webhook', 'example.com:443'),
  version: fc.constantFrom('HTTP/1.1', 'HTTP/1.1', 'HTTP/1.0'),
  headers: fc.array(
    fc.tuple(
      fc.constantFrom('Content-Length', 'Transfer-Encoding', 'Authorization', 'Expect', 'Connection', 'Upgrade', 'Content-Type', 'Host', 'Keep-Alive', 'Content-Encoding', 'X-Forwarded-For'),
      fc.constantFrom('0', '5', '-1', 'abc', '99999999999999999999', ' 7', 'chunked', 'gzip, chunked', 'identity', '100-continue', 'something-else', 'close', 'keep-alive', 'upgrade', 'websocket', 'h2c', 'Bearer x.y.z', 'Bearer ', 'Basic dXNlcjpwYXNz', 'gzip', ''),
    ),
    { maxLength: 3 },
  ),
  body: bodyArbitrary,
  framing: framingArbitrary,
  host: fc.boolean(),
  eol: fc.constant('\r\n'),
});

/** Anything: random methods, targets, versions, header names and bytes, bare LF line ends. */
const chaoticCase: fc.Arbitrary<FuzzCase> = fc.record({
  method: fc.oneof(fc.constantFrom('POST', 'GET', 'HEAD', 'PATCH', 'TRACE', 'BREW', 'get', ''), printable(8)),
  target: fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom('/webhook', '/health', '/metrics', '/', '*', '//webhook', '/%00', '/../webhook', 'HTTP://x/metrics?y') },
    { weight: 2, arbitrary: printable(40).map((text) => `/${text}`) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 20 }) },
    { weight: 1, arbitrary: fc.integer({ min: 1000, max: 20_000 }).map((length) => `/${'a'.repeat(length)}`) },
  ),
  version: fc.constantFrom('HTTP/1.1', 'HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/1.2', 'HTTP/0.9', 'HTTPS/1.1', 'http/1.1', ''),
  headers: fc.array(
    fc.tuple(
      fc.oneof(fc.constantFrom('Content-Length', 'Transfer-Encoding', 'Authorization', 'Expect', 'Host', 'TE', 'Trailer'), printable(12)),
      fc.oneof(printable(30), fc.string({ unit: 'binary', maxLength: 30 }), fc.integer({ min: 9000, max: 20_000 }).map((length) => 'v'.repeat(length))),
    ),
    { maxLength: 4 },
  ),
  body: bodyArbitrary,
  framing: framingArbitrary,
  host: fc.boolean(),
  eol: fc.constantFrom('\r\n', '\r\n', '\n'),
});

const caseArbitrary = fc.oneof({ weight: 3, arbitrary: plausibleCase }, { weight: 2, arbitrary: chaoticCase });

function encodeCase(fuzz: FuzzCase): Buffer {
  const lines = [`${fuzz.method} ${fuzz.target} ${fuzz.version}`];
  if (fuzz.host) lines.push('Host: 127.0.0.1');
  // A real webhook body gets a real token (unless the random headers bring another Authorization).
  if (fuzz.body.length > 0 && fuzz.body[0] === 0x7b && fuzz.body.at(-1) === 0x7d) lines.push(`Authorization: ${authorize(fuzz.body.toString())}`);
  for (const [name, value] of fuzz.headers) lines.push(`${name}: ${value}`);
  let body = fuzz.body;
  switch (fuzz.framing) {
    case 'length':
      lines.push(`Content-Length: ${body.length}`);
      break;
    case 'short': // announces more than it sends: the server waits, then sees the client finish
      lines.push(`Content-Length: ${body.length + 10}`);
      break;
    case 'chunked':
      lines.push('Transfer-Encoding: chunked');
      body = Buffer.concat([...(body.length ? [Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from('\r\n')] : []), Buffer.from('0\r\n\r\n')]);
      break;
    case 'broken-chunks':
      lines.push('Transfer-Encoding: chunked');
      body = Buffer.concat([Buffer.from('zz\r\n'), body]);
      break;
    case 'none':
      break;
  }
  return Buffer.concat([Buffer.from(lines.join(fuzz.eol) + fuzz.eol + fuzz.eol, 'latin1'), body]);
}

interface Answer {
  readonly status: number;
  readonly headers: Map<string, string>;
  readonly body: string;
}

/** Splits what the server sent into HTTP/1.1 responses; throws on anything malformed. */
function parseAnswers(raw: Buffer, headRequest: boolean): Answer[] {
  const answers: Answer[] = [];
  let rest = raw;
  let finals = 0;
  while (rest.length > 0) {
    const end = rest.indexOf('\r\n\r\n');
    if (end === -1) throw new Error(`incomplete head: ${JSON.stringify(rest.toString('latin1').slice(0, 200))}`);
    const [statusLine, ...headerLines] = rest.subarray(0, end).toString('latin1').split('\r\n');
    const match = /^HTTP\/1\.1 (\d{3}) [A-Za-z -]+$/.exec(statusLine!);
    if (!match) throw new Error(`bad status line ${JSON.stringify(statusLine)}`);
    const status = Number(match[1]);
    const headers = new Map<string, string>();
    for (const line of headerLines) {
      const header = /^([A-Za-z0-9-]+): (.*)$/.exec(line);
      if (!header) throw new Error(`bad header line ${JSON.stringify(line)}`);
      const name = header[1]!.toLowerCase();
      if (headers.has(name)) throw new Error(`header ${name} twice`);
      headers.set(name, header[2]!);
    }
    rest = rest.subarray(end + 4);
    if (status < 200) {
      answers.push({ status, headers, body: '' });
      continue;
    }
    assert.equal(headers.get('transfer-encoding'), undefined, 'answers are not chunked');
    const length = Number(headers.get('content-length'));
    assert.ok(Number.isInteger(length) && length >= 0, `content-length ${headers.get('content-length')}`);
    // The answer to a HEAD has no body, unless the request never parsed as a HEAD (a raw 400 has one).
    const bodyLength = headRequest && finals === 0 && (rest.length < length || rest.subarray(0, 9).toString('latin1') === 'HTTP/1.1 ') ? 0 : length;
    if (rest.length < bodyLength) throw new Error('body cut short');
    const body = rest.subarray(0, bodyLength).toString('utf8');
    rest = rest.subarray(bodyLength);
    finals++;
    answers.push({ status, headers, body });
  }
  return answers;
}

/** Sends one case on its own connection; returns what came back once the exchange is over. */
function exchange(port: number, bytes: Buffer): Promise<Buffer> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let quiet: NodeJS.Timeout | undefined;
    let halfClosed = false;
    const finish = () => {
      clearTimeout(quiet);
      clearTimeout(limit);
      socket.destroy();
      resolve(Buffer.concat(chunks));
    };
    // Once the server has said nothing for a while, the client finishes its side (what a real client
    // does when it has sent everything); the server then answers what is pending and closes.
    const arm = () => {
      clearTimeout(quiet);
      quiet = setTimeout(() => {
        if (!halfClosed) {
          halfClosed = true;
          socket.end();
          arm();
        } else finish();
      }, 150);
    };
    const limit = setTimeout(finish, 5000);
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      arm();
    });
    socket.on('error', () => {});
    socket.on('close', finish);
    socket.on('connect', () => {
      socket.write(bytes);
      arm();
    });
  });
}

async function rejectionsTotal(daemon: Daemon): Promise<number> {
  const client = new Client(daemon.url);
  try {
    return sumValues(parsePrometheusText(await (await client.request({ path: '/metrics', method: 'GET' })).body.text()), 'control_plane_rejections_total');
  } finally {
    await client.close();
  }
}

test(`${CASES} fuzzed requests over raw TCP: every one answered, well-formed, counted once; the daemon stays up (seed ${SEED})`, async () => {
  const daemon = await startDaemon({ args: ['--max-body', '64K'] });
  try {
    const cases = fc.sample(caseArbitrary, { numRuns: CASES, seed: SEED });
    const before = await rejectionsTotal(daemon);
    let errorAnswers = 0;
    let debugLast = before;
    const statuses = new Map<number, number>();
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < cases.length) {
          const fuzz = cases[next++]!;
          const bytes = encodeCase(fuzz);
          const raw = await exchange(daemon.port, bytes);
          const where = `case ${JSON.stringify({ ...fuzz, body: `${fuzz.body.length} bytes`, target: fuzz.target.slice(0, 80), headers: fuzz.headers.map(([name, value]) => [name, value.slice(0, 80)]) })}\nreceived ${JSON.stringify(raw.toString('latin1').slice(0, 300))}`;
          let answers: Answer[];
          try {
            answers = parseAnswers(raw, fuzz.method === 'HEAD');
          } catch (error) {
            throw new Error(`${(error as Error).message}\n${where}`);
          }
          const finals = answers.filter((answer) => answer.status >= 200);
          if (process.env.FUZZ_DEBUG) {
            const total = await rejectionsTotal(daemon);
            const errors = finals.filter((answer) => answer.status >= 400).length;
            if (total - debugLast !== errors) console.log(`# MISMATCH counted ${total - debugLast} answered ${errors}\n${where}`);
            debugLast = total;
          }
          assert.ok(finals.length >= 1, `no answer\n${where}`);
          for (const answer of finals) {
            statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
            if (answer.status >= 400) errorAnswers++;
            if (answer.body === '') continue;
            if (answer.headers.get('content-type')?.startsWith('text/plain')) continue; // GET /metrics
            assert.equal(answer.headers.get('content-type'), 'application/json', where);
            const json = JSON.parse(answer.body) as Record<string, unknown>;
            if (answer.status >= 400) assert.equal(typeof json.error, 'string', where);
          }
        }
      }),
    );
    const after = await rejectionsTotal(daemon);
    console.log(`# fuzz (seed ${SEED}): ${CASES} cases, answers by status ${JSON.stringify(Object.fromEntries([...statuses].sort()))}`);
    assert.equal(after - before, errorAnswers, 'every 4xx/5xx answer counted exactly once, nothing counted that was not answered');

    const client = new Client(daemon.url);
    const health = await client.request({ path: '/health', method: 'GET' });
    assert.equal(health.statusCode, 200, 'still healthy');
    await health.body.text();
    await client.close();
    const exit = await daemon.stop();
    assert.equal(exit.code, 0, `clean exit; stderr: ${daemon.stderr.slice(0, 2000)}`);
    assert.doesNotMatch(daemon.stderr, /internal error|fatal|Unhandled|TypeError|RangeError/);
    const lines = daemon.lines();
    lines.forEach((line, index) => assert.equal(line.seq, index + 1, 'seq without gaps'));
    const rejected = lines.filter((line) => line.event_type === 'webhook.rejected');
    assert.ok(rejected.length <= errorAnswers, `${rejected.length} rejection lines for ${errorAnswers} refused requests`);
    for (const line of rejected) assert.ok(typeof line.reason === 'string' && typeof line.http_status === 'number');
  } finally {
    await daemon.stop();
  }
});
