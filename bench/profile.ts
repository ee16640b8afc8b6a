// Where the time goes: one burst against the sources run under
// `node --cpu-prof`, summarised by self time per area (our files, each
// dependency, node's HTTP/net internals, GC) and the hottest functions.

import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { runBurst, type Target } from './burst.ts';
import { REPO_ROOT } from './targets.ts';
import { buildWorkload, type WorkloadKind } from './workload.ts';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

export interface ProfileSummary {
  readonly path: string;
  readonly totalMs: number;
  /** area → self ms, descending. */
  readonly areas: ReadonlyArray<readonly [string, number]>;
  /** function → self ms, descending (top 20). */
  readonly functions: ReadonlyArray<readonly [string, number]>;
}

/** The area a frame belongs to: a dependency, one of our files, a node internal module, or V8's bookkeeping. */
function areaOf(url: string, functionName: string): string {
  if (url === '') return functionName.startsWith('(') ? functionName : `(native) ${functionName || 'anonymous'}`;
  const dependency = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (dependency) return dependency[1]!;
  const ours = /\/(src\/.+)$/.exec(url);
  if (ours) return ours[1]!;
  const internal = /^node:(?:internal\/)?([^/]+(?:\/[^/]+)?)/.exec(url);
  if (internal) return `node:${internal[1]}`;
  return url;
}

export function summariseProfile(path: string): ProfileSummary {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const areas = new Map<string, number>();
  const functions = new Map<string, number>();
  let totalMs = 0;
  profile.samples.forEach((id, index) => {
    const ms = (profile.timeDeltas[index] ?? 0) / 1000;
    const node = byId.get(id);
    if (!node) return;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === '(idle)') return;
    totalMs += ms;
    const area = areaOf(url, functionName);
    areas.set(area, (areas.get(area) ?? 0) + ms);
    const name = `${functionName || '(anonymous)'} ${url ? `${area}:${lineNumber + 1}` : ''}`.trim();
    functions.set(name, (functions.get(name) ?? 0) + ms);
  });
  const descending = (map: Map<string, number>) => [...map].sort((a, b) => b[1] - a[1]);
  return { path, totalMs, areas: descending(areas), functions: descending(functions).slice(0, 20) };
}

export async function profileBurst(target: Target, options: { kind: WorkloadKind; concurrency: number; count: number; warmup: number; directory: string }): Promise<ProfileSummary> {
  const name = `burst-${new Date().toISOString().slice(0, 19).replace(/:/g, '-')}.cpuprofile`;
  const profiled: Target = { ...target, name: `${target.name} --cpu-prof`, args: ['--cpu-prof', '--cpu-prof-dir', options.directory, '--cpu-prof-name', name, ...target.args] };
  await runBurst(profiled, {
    concurrency: options.concurrency,
    warmup: options.warmup > 0 ? buildWorkload({ count: options.warmup, seed: 99, kind: options.kind }) : null,
    workload: buildWorkload({ count: options.count, seed: 100, kind: options.kind }),
    repeat: 0,
  });
  return summariseProfile(join(options.directory, name));
}

export function profileTable(summary: ProfileSummary): string {
  const share = (ms: number) => `${((ms * 100) / summary.totalMs).toFixed(1)}%`;
  const areaRows = summary.areas.filter(([, ms]) => ms / summary.totalMs >= 0.005).map(([area, ms]) => `| ${area} | ${ms.toFixed(0)} | ${share(ms)} |`);
  const functionRows = summary.functions.map(([name, ms]) => `| \`${name.replace(/\|/g, '\\|')}\` | ${ms.toFixed(0)} | ${share(ms)} |`);
  return [
    `Busy (non-idle) time in the profile: ${summary.totalMs.toFixed(0)} ms (warm-up included). Profile: \`${relative(REPO_ROOT, summary.path)}\` (not committed; open it in Chrome DevTools).`,
    'V8 samples on a wall clock: a native write that is descheduled mid-syscall (the load generator it just woke takes the core) is',
    'counted as busy, which inflates `writeUtf8String` (the HTTP answer) and `writeBuffer` (the log line). The attribution table above',
    'measures CPU time from /proc instead.',
    '',
    '| area (self time) | ms | share |',
    '| :--- | ---: | ---: |',
    ...areaRows,
    '',
    '| hottest functions (self time) | ms | share |',
    '| :--- | ---: | ---: |',
    ...functionRows,
  ].join('\n');
}
