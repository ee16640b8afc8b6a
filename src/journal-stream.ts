// Is stdout (or stderr) the systemd journal? systemd says so in
// JOURNAL_STREAM=<device>:<inode>, the stream socket it connected to the
// service's stdout/stderr (systemd.exec(5)). The variable is inherited by
// children and survives redirections, so it counts only when it names the
// file descriptor as it is now: `control-plane ... | jq` run from a unit's
// shell has a pipe on fd 1, not the journal.
//
// Pure: the caller passes what fstat says about each descriptor.

export interface FileIdentity {
  readonly dev: bigint;
  readonly ino: bigint;
}

export interface JournalStreams {
  /** fd 1 is the journal: each output line gets its syslog priority prefix. */
  readonly stdout: boolean;
  /** fd 2 is the journal: everything said there is a JSON line with a priority prefix. */
  readonly stderr: boolean;
}

export const NOT_THE_JOURNAL: JournalStreams = Object.freeze({ stdout: false, stderr: false });

/** `device:inode` as systemd writes it (two decimal numbers), or null. */
export function parseJournalStream(value: string | undefined): FileIdentity | null {
  const match = value === undefined ? null : /^(\d+):(\d+)$/.exec(value.trim());
  return match ? { dev: BigInt(match[1]!), ino: BigInt(match[2]!) } : null;
}

/** Which of stdout and stderr are the journal stream that `JOURNAL_STREAM` names. */
export function journalStreams(journalStream: string | undefined, identify: (fd: number) => FileIdentity | null): JournalStreams {
  const journal = parseJournalStream(journalStream);
  if (journal === null) return NOT_THE_JOURNAL;
  const is = (fd: number): boolean => {
    const identity = identify(fd);
    return identity !== null && identity.dev === journal.dev && identity.ino === journal.ino;
  };
  return { stdout: is(1), stderr: is(2) };
}
