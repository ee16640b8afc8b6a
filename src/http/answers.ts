// Writing answers: JSON bodies with an exact Content-Length, answers whose
// bytes never change built once, and raw HTTP/1.1 answers for sockets that
// have no ServerResponse (malformed requests, refused connections).

import { type ServerResponse, STATUS_CODES } from 'node:http';

/** A JSON answer whose bytes never change, with its headers; the body is encoded once, not per answer. */
export interface ConstantAnswer {
  readonly status: number;
  readonly body: Buffer;
  readonly headers: Readonly<Record<string, string>>;
}

export function constantAnswer(status: number, body: object): ConstantAnswer {
  const bytes = Buffer.from(JSON.stringify(body), 'utf8');
  return Object.freeze({ status, body: bytes, headers: Object.freeze({ 'Content-Length': String(bytes.length), 'Content-Type': 'application/json' }) });
}

export const ACCEPTED_ANSWER = constantAnswer(200, { status: 'accepted' });
export const DUPLICATE_ANSWER = constantAnswer(200, { status: 'duplicate' });

/** Whether the response can still be written (a pipelined one with no socket yet can). */
function writable(response: ServerResponse): boolean {
  return !(response.headersSent || response.destroyed || response.socket?.destroyed === true);
}

/** `closeAfter`: the connection is closed once answered (shutting down, or the body was not read). */
export function answer(response: ServerResponse, status: number, body: string, headers: Readonly<Record<string, string>>, closeAfter = false): void {
  if (!writable(response)) return;
  if (closeAfter) response.shouldKeepAlive = false;
  // writeHead() fixes the header before end() sees the body: without a length Node would frame it chunked.
  response.writeHead(status, { 'Content-Length': String(Buffer.byteLength(body)), ...headers });
  response.end(body);
}

export function answerJson(response: ServerResponse, status: number, body: object, headers: Readonly<Record<string, string>> = {}, closeAfter = false): void {
  answer(response, status, JSON.stringify(body), { 'Content-Type': 'application/json', ...headers }, closeAfter);
}

/** answerJson for an answer built once: the same bytes, without building them per request. */
export function answerConstant(response: ServerResponse, constant: ConstantAnswer, closeAfter = false): void {
  if (!writable(response)) return;
  if (closeAfter) response.shouldKeepAlive = false;
  response.writeHead(constant.status, constant.headers);
  response.end(constant.body);
}

/** A complete HTTP/1.1 answer for a socket that has no ServerResponse to write it with. */
export function rawAnswer(status: number, reason: string, extraHeaders = ''): string {
  const body = JSON.stringify({ error: reason });
  return (
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\nContent-Type: application/json\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\n${extraHeaders}Connection: close\r\n\r\n${body}`
  );
}
