// The burst with the shared store: each control-plane row once more with
// `--store redis://…`, against a redis-server on the same machine (started
// here on a free loopback port, persistence off, stopped at the end). The
// target: at least 0.5× the embedded store's req/s, p99 at most 2× its p99,
// and nothing answered 200 missing from the output.

import type { Target } from './burst.ts';
import type { TargetSummary, Verdict } from './report.ts';
import type { TargetSet } from './targets.ts';
import { RedisServer, redisMissing } from '../test/helpers/redis-server.ts';

export interface RedisRows {
  /** Redis row → the same server on the embedded store. */
  readonly twins: ReadonlyMap<string, string>;
  readonly stop: () => Promise<void>;
}

/** Adds a `+ redis` row for every control-plane row of `set` (in place), with the server they share. */
export async function addRedisRows(set: TargetSet, controlPlaneRows: readonly string[]): Promise<RedisRows> {
  const missing = redisMissing();
  if (missing) {
    set.notes.push(`no shared-store rows: ${missing}`);
    return { twins: new Map(), stop: async () => {} };
  }
  const server = await RedisServer.start();
  const twins = new Map<string, string>();
  const bareFor = set.bareFor as Map<string, string>;
  const bareSameFlagsFor = set.bareSameFlagsFor as Map<string, string>;
  for (const name of controlPlaneRows) {
    const embedded = set.targets.find((target) => target.name === name);
    if (!embedded) continue;
    const row: Target = {
      ...embedded,
      name: `${name} + redis`,
      description: `${embedded.description}, with --store ${server.url}/0 (redis-server on the same machine, persistence off)`,
      args: [...embedded.args, '--store', `${server.url}/0`, '--instance-id', 'bench'],
    };
    set.targets.splice(set.targets.indexOf(embedded) + 1, 0, row);
    twins.set(row.name, name);
    const bare = bareFor.get(name);
    if (bare) bareFor.set(row.name, bare);
    const bareSameFlags = bareSameFlagsFor.get(name);
    if (bareSameFlags) bareSameFlagsFor.set(row.name, bareSameFlags);
  }
  return { twins, stop: () => server.close() };
}

/** The shared store's targets, judged for each `+ redis` row against its embedded twin. */
export function redisVerdicts(summaries: readonly TargetSummary[], twins: ReadonlyMap<string, string>): Verdict[] {
  const verdicts: Verdict[] = [];
  const byName = new Map(summaries.map((summary) => [summary.target.name, summary]));
  const rows = [...twins].flatMap(([name, twin]) => {
    const shared = byName.get(name);
    const embedded = byName.get(twin);
    return shared && embedded ? [{ name, shared, embedded }] : [];
  });
  if (rows.length === 0) return verdicts;
  const judge = (target: string, value: (row: (typeof rows)[number]) => number, met: (value: number) => boolean, format: (value: number) => string): void => {
    verdicts.push({ target, measured: rows.map((row) => `${row.name}: ${format(value(row))}`).join('; '), met: rows.every((row) => met(value(row))) });
  };
  judge('shared store: throughput ≥ 0.5× the embedded store', (row) => row.shared.requestsPerSecond / row.embedded.requestsPerSecond, (v) => v >= 0.5, (v) => `${v.toFixed(2)}×`);
  judge('shared store: p99 ≤ 2× the embedded store’s', (row) => row.shared.p99 / row.embedded.p99, (v) => v <= 2, (v) => `${v.toFixed(2)}×`);
  judge('shared store: nothing answered 200 missing from the output', (row) => (row.shared.missing ?? 0) + Object.values(row.shared.failures).reduce((sum, count) => sum + count, 0), (v) => v === 0, (v) => `${v} missing or not 200`);
  return verdicts;
}
