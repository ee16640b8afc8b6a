// What never reaches the router: malformed HTTP (llhttp's HPE_* errors),
// the header and request timeouts, and CONNECT. Each gets one JSON answer
// and one line; a client that vanished (ECONNRESET, EPIPE) gets neither:
// there is nobody to answer and nothing it did is news.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { rejectedLine } from '../obs/webhook-lines.ts';
import { rawAnswer } from './answers.ts';
import { REFUSALS } from './reasons.ts';
import type { RejectionLog } from './rejection-log.ts';

export class MalformedRequests {
  /** Sockets whose HTTP stream broke (malformed, timed out): answered once, then closed. */
  private readonly brokenSockets = new WeakSet<Socket>();
  private readonly rejections: RejectionLog;
  /** Sockets refused at the connection cap: already answered. */
  private readonly refusedSockets: WeakSet<Socket>;

  constructor(rejections: RejectionLog, refusedSockets: WeakSet<Socket>) {
    this.rejections = rejections;
    this.refusedSockets = refusedSockets;
  }

  onClientError(error: NodeJS.ErrnoException, socket: Socket): void {
    // llhttp stays in its error state and reports it again for every later
    // chunk on this socket: answer and log the first report only.
    if (this.brokenSockets.has(socket)) return;
    this.brokenSockets.add(socket);
    const code = error.code ?? '';
    const timedOut = code === 'ERR_HTTP_REQUEST_TIMEOUT';
    if (this.refusedSockets.has(socket) || !(timedOut || code.startsWith('HPE_'))) {
      socket.destroy();
      return;
    }
    const reason = timedOut ? 'request_timeout' : code === 'HPE_HEADER_OVERFLOW' ? 'headers_too_large' : 'malformed_http_request';
    const { status } = REFUSALS[reason];
    const answerAndClose = (): void => {
      if (socket.writable) socket.end(rawAnswer(status, reason), () => socket.destroy());
      else socket.destroy();
    };
    const log = (): void => this.rejections.log(reason, [rejectedLine(status, reason, timedOut ? undefined : code)]);
    // Our side is already closing (after an answer that ends the connection): nobody is left to answer.
    if (!socket.writable) return;
    const pending = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
    // No request in progress, or the one in progress is the broken one (its
    // body did not parse, or it timed out): its handler will never answer.
    if (!pending || (!pending.headersSent && !pending.req.complete)) {
      log();
      return answerAndClose();
    }
    // An earlier request is still being answered and a pipelined one behind
    // it is broken. If that answer closes the connection (HTTP/1.0,
    // `Connection: close`), the bytes behind it are not a request: nothing
    // to answer or log. Otherwise answer in order, then close.
    if (!pending.shouldKeepAlive) return;
    log();
    pending.once('finish', answerAndClose);
    pending.once('close', () => {
      if (!pending.writableFinished) socket.destroy();
    });
  }

  onConnect(request: IncomingMessage, socket: Socket): void {
    const { status } = REFUSALS.method_not_allowed;
    this.rejections.log('method_not_allowed', [rejectedLine(status, 'method_not_allowed', `CONNECT ${String(request.url).slice(0, 100)}`)]);
    socket.on('error', () => {});
    socket.end(rawAnswer(status, 'method_not_allowed', 'Allow: POST\r\n'), () => socket.destroy());
  }
}
