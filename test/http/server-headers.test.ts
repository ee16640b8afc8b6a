// firstHeader reads Authorization and Content-Length from rawHeaders; it
// must agree with what node:http's own `request.headers` says for them,
// whatever the casing and however often they are repeated.

import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import { test } from 'node:test';
import { firstHeader } from '../../src/http/server.ts';

test('firstHeader agrees with request.headers for Authorization and Content-Length', async () => {
  const seen: IncomingMessage[] = [];
  const server = createServer((request, response) => {
    seen.push(request);
    request.resume();
    request.on('end', () => response.end('ok'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  const requests = [
    'authorization: one\r\nContent-Length: 2\r\n',
    'AUTHORIZATION: first\r\nAuthorization: second\r\ncontent-length: 2\r\n',
    'X-Authorization: not-it\r\nAuthorizatioN: Bearer  tok \r\nCONTENT-LENGTH: 2\r\n',
    'Content-Length: 2\r\n',
    'authorization:\r\nContent-Length: 2\r\n',
  ];
  try {
    for (const headers of requests) {
      await new Promise<void>((resolve, reject) => {
        const socket = connect(port, '127.0.0.1');
        socket.on('error', reject);
        socket.on('data', () => {
          socket.destroy();
          resolve();
        });
        socket.write(`POST /webhook HTTP/1.1\r\nHost: x\r\n${headers}Connection: close\r\n\r\nab`);
      });
    }
  } finally {
    server.close();
  }
  assert.equal(seen.length, requests.length);
  for (const request of seen) {
    assert.equal(firstHeader(request, 'authorization'), request.headers.authorization, request.rawHeaders.join('|'));
    assert.equal(firstHeader(request, 'content-length'), request.headers['content-length'], request.rawHeaders.join('|'));
  }
});
