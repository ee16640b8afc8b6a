// Baseline 3: what a TypeScript user writes instead of control-plane, from
// LiveKit's docs: livekit-server-sdk's WebhookReceiver inside node:http,
// one JSON line per event on stdout (console.log, synchronous when stdout is
// a file, as in the bench). 200 when the receiver accepts the webhook, 401
// when it throws.
//
//   LIVEKIT_API_KEY=... LIVEKIT_API_SECRET=... node --import tsx bench/servers/sdk-receiver.ts

import { createServer } from 'node:http';
import { WebhookReceiver } from 'livekit-server-sdk';
import { listenArgs } from './listen-args.ts';

const apiKey = process.env.LIVEKIT_API_KEY;
const apiSecret = process.env.LIVEKIT_API_SECRET;
if (!apiKey || !apiSecret) {
  process.stderr.write('sdk-receiver: set LIVEKIT_API_KEY and LIVEKIT_API_SECRET\n');
  process.exit(2);
}
const receiver = new WebhookReceiver(apiKey, apiSecret);

const server = createServer((request, response) => {
  let body = '';
  request.setEncoding('utf8');
  request.on('data', (chunk: string) => (body += chunk));
  request.on('end', async () => {
    try {
      const event = await receiver.receive(body, request.headers.authorization);
      console.log(
        JSON.stringify({
          ts: new Date().toISOString(),
          event: event.event,
          id: event.id,
          room_sid: event.room?.sid,
          room_name: event.room?.name,
          participant_identity: event.participant?.identity,
          participant_sid: event.participant?.sid,
          track_sid: event.track?.sid,
          egress_id: event.egressInfo?.egressId,
        }),
      );
      response.writeHead(200, { 'Content-Type': 'application/json' });
      response.end('{"status":"accepted"}');
    } catch (error) {
      response.writeHead(401, { 'Content-Type': 'application/json' });
      response.end(JSON.stringify({ error: error instanceof Error ? error.message : String(error) }));
    }
  });
});

const { host, port } = listenArgs(process.argv.slice(2));
server.listen(port, host, () => {
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  console.log(JSON.stringify({ event_type: 'baseline.started', listen: `${address.address}:${address.port}` }));
});
process.on('SIGTERM', () => server.close(() => process.exit(0)).closeAllConnections());
