// Diagnostics on standard error (the daemon's own troubles: the output
// failing, a key reload refused). Under systemd stderr is a socket to
// journald like stdout, so it is written the same non-blocking way; a
// diagnostic that the reader cannot take now is dropped and counted rather
// than ever blocking the daemon (the output lines, not these, are the
// audit trail).

import { NonBlockingWriter } from './nonblocking-fd.ts';

const STDERR_FD = 2;

export class StderrLines {
  private readonly output: NonBlockingWriter;
  private unfinished = false;
  /** Diagnostics dropped because stderr was not taking them. */
  dropped = 0;

  constructor(fd: number = STDERR_FD) {
    this.output = new NonBlockingWriter(fd);
  }

  write(text: string): void {
    if (this.unfinished) {
      this.dropped++;
      return;
    }
    try {
      const pending = this.output.write(Buffer.from(text, 'utf8'));
      if (pending !== undefined) {
        this.unfinished = true;
        pending.then(
          () => (this.unfinished = false),
          () => (this.unfinished = false),
        );
      }
    } catch {
      this.dropped++;
    }
  }
}
