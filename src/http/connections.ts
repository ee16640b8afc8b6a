// Open connections: admitted up to --max-connections. When the cap is
// reached, the connection that has waited longest without a request in
// processing (an idle keep-alive socket, or a client trickling headers or a
// body) is closed to make room, so stalled clients cannot lock real
// webhooks out; when every connection is busy, the new one is refused.

import type { Socket } from 'node:net';

/** How many of the oldest idle connections eviction looks at for one that has sent something. */
const EVICTION_SCAN = 64;

/** Per open connection: how many of its requests are being processed (verified, written, answered). */
export interface ConnectionState {
  busy: number;
}

export interface ConnectionEvents {
  readonly onCountChanged: (open: number) => void;
  readonly onEvicted: () => void;
}

export class ConnectionTable {
  /** Open sockets, least recently active first (a request starting moves its socket to the end). */
  private readonly connections = new Map<Socket, ConnectionState>();
  private readonly maxConnections: number;
  private readonly events: ConnectionEvents;

  constructor(maxConnections: number, events: ConnectionEvents) {
    this.maxConnections = maxConnections;
    this.events = events;
  }

  get size(): number {
    return this.connections.size;
  }

  /** Admits `socket`, evicting an idle one at the cap; false when every connection is busy (refuse it). */
  admit(socket: Socket): boolean {
    if (this.connections.size >= this.maxConnections && !this.evictOne()) return false;
    this.connections.set(socket, { busy: 0 });
    this.events.onCountChanged(this.connections.size);
    socket.once('close', () => {
      if (this.connections.delete(socket)) this.events.onCountChanged(this.connections.size);
    });
    return true;
  }

  stateOf(socket: Socket): ConnectionState | undefined {
    return this.connections.get(socket);
  }

  /** Marks a socket as just active: it becomes the last candidate for eviction. */
  touch(socket: Socket): void {
    const state = this.connections.get(socket);
    if (state === undefined) return;
    this.connections.delete(socket);
    this.connections.set(socket, state);
  }

  /**
   * Closes the longest-waiting connection that has no request in
   * processing; false when every one is busy. Among the oldest
   * EVICTION_SCAN, one that has sent bytes without completing a request (a
   * trickler, or an idle keep-alive socket) goes before one that has not
   * been read from yet: under a connection flood, a new connection whose
   * request is still unread in the kernel is most likely a real client.
   */
  private evictOne(): boolean {
    let fallback: Socket | undefined;
    let scanned = 0;
    for (const [socket, state] of this.connections) {
      if (state.busy > 0) continue;
      if (socket.bytesRead > 0) {
        fallback = socket;
        break;
      }
      fallback ??= socket;
      if (++scanned >= EVICTION_SCAN) break;
    }
    if (fallback === undefined) return false;
    this.connections.delete(fallback);
    this.events.onCountChanged(this.connections.size);
    this.events.onEvicted();
    fallback.destroy();
    return true;
  }
}
