// One POST /webhook, from its headers to its answer: one phase at a time,
// along a table of allowed moves (a move the table does not have is a bug
// and throws).
//
//   reading ─▶ checking_token ─▶ reading ─▶ queued ─▶ processing ─▶ answered ─▶ done
//      │              │                                                ▲
//      └──────────────┴── refused (413, 401, 503) ─────────────────────┘
//
// `reading`: the body arrives (its token may already be known valid);
// `checking_token`: the body is paused while a large body's token is checked
// before more of it is read; `queued`: the body is complete and waits for
// this turn's processing; `processing`: verified, planned, written;
// `answered`: the answer is sent (or there was nobody left to send it to);
// `done`: the response closed and the exchange is counted out.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { VerifyReason } from '../pipeline/verify.ts';
import type { ConnectionState } from './connections.ts';

/** Where the body intake hands an exchange on: complete, or refused while it was read. */
export interface ExchangeHandler {
  enqueue(exchange: WebhookExchange): void;
  refuse(exchange: WebhookExchange, reason: 'shutting_down' | 'body_too_large' | 'too_much_body_in_memory' | VerifyReason, detail?: string): void;
}

export type ExchangePhase = 'reading' | 'checking_token' | 'queued' | 'processing' | 'answered' | 'done';

const ALLOWED_MOVES: Readonly<Record<ExchangePhase, readonly ExchangePhase[]>> = {
  reading: ['checking_token', 'queued', 'answered', 'done'],
  checking_token: ['reading', 'queued', 'answered', 'done'],
  queued: ['processing'],
  processing: ['answered'],
  answered: ['done'],
  done: [],
};

export class WebhookExchange {
  readonly request: IncomingMessage;
  readonly response: ServerResponse;
  /** performance.now() at the headers, for the latency histogram. */
  readonly startedAt: number;
  /** Wall-clock arrival (ms): every time check on this webhook uses it. */
  readonly receivedAtMs: number;
  readonly connection: ConnectionState | undefined;
  private current: ExchangePhase = 'reading';
  /** Whether the token was checked before the whole body was read. */
  tokenVerified: boolean;
  /** `Expect: 100-continue` not answered yet. */
  expectsContinue: boolean;
  readonly chunks: Buffer[] = [];
  /** Body bytes received and held. */
  size = 0;
  bodyComplete = false;
  /** The client closed the response (or it was answered and closed). */
  responseClosed = false;
  /** The complete body and its Authorization header, once queued. */
  body: Uint8Array | null = null;
  authorization: string | undefined;

  constructor(request: IncomingMessage, response: ServerResponse, startedAt: number, receivedAtMs: number, connection: ConnectionState | undefined, tokenVerified: boolean, expectsContinue: boolean) {
    this.request = request;
    this.response = response;
    this.startedAt = startedAt;
    this.receivedAtMs = receivedAtMs;
    this.connection = connection;
    this.tokenVerified = tokenVerified;
    this.expectsContinue = expectsContinue;
  }

  get phase(): ExchangePhase {
    return this.current;
  }

  /** Still taking body bytes (and may be refused for them). */
  get receiving(): boolean {
    return this.current === 'reading' || this.current === 'checking_token';
  }

  can(to: ExchangePhase): boolean {
    return ALLOWED_MOVES[this.current].includes(to);
  }

  move(to: ExchangePhase): void {
    if (!this.can(to)) throw new Error(`webhook exchange: ${this.current} → ${to} is not an allowed move`);
    this.current = to;
  }
}
