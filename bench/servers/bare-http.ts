// Baseline 2: the practical limit of the runtime. A bare node:http server
// that reads the whole body and answers 200, nothing else: no verification,
// no parsing, no output. Prints its address as one JSON line, like the
// daemon's control_plane.started, so the bench finds the port the same way.
//
//   node --import tsx bench/servers/bare-http.ts [--port 0] [--host 127.0.0.1]

import { createServer } from 'node:http';
import { writeSync } from 'node:fs';
import { listenArgs } from './listen-args.ts';

const ANSWER = '{"status":"accepted"}';

const server = createServer((request, response) => {
  let size = 0;
  request.on('data', (chunk: Buffer) => (size += chunk.length));
  request.on('end', () => {
    response.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': ANSWER.length });
    response.end(ANSWER);
  });
});

const { host, port } = listenArgs(process.argv.slice(2));
server.listen(port, host, () => {
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  writeSync(1, `${JSON.stringify({ event_type: 'baseline.started', listen: `${address.address}:${address.port}` })}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)).closeAllConnections());
