// provider.* lines that need no session state: egress that failed, was
// aborted or hit a limit, ingress in error, and the older servers'
// non-zero `numDropped`. (SIP trunk and media failures come from the call
// state, calls.ts.) Each finding has a key so that the same trouble is
// reported once even when LiveKit sends it in several events (a duplicated
// egress run sends several egress_ended for one egressId,
// docs/livekit-facts.md#duplicates).

import type { WebhookEvent } from '@livekit/protocol';
import { derivedLine, nonEmpty } from './calls.ts';
import { egressStatusName, ingressStatusName } from './enum-names.ts';
import { sessionIdOf } from './livekit.ts';
import type { ObsEvent } from './schema.ts';
import { EGRESS_PROVIDER_STATUSES, INGRESS_PROVIDER_STATUSES } from './transitions.ts';

export interface ProviderFinding {
  /** What makes it the same trouble; undefined when nothing identifies it (always reported). */
  readonly key: string | undefined;
  readonly line: ObsEvent;
}

export function providerFindings(event: WebhookEvent): ProviderFinding[] {
  const findings: ProviderFinding[] = [];
  const sessionId = sessionIdOf(event);
  const webhookId = nonEmpty(event.id);

  const egress = event.egressInfo;
  if (egress) {
    const status = egressStatusName(egress);
    if (EGRESS_PROVIDER_STATUSES.has(status)) {
      findings.push({
        key: egress.egressId ? `egress:${egress.egressId}:${status}` : webhookId && `event:${webhookId}:egress`,
        line: derivedLine('warn', 'provider.event', sessionId, {
          webhook_id: webhookId,
          room_name: nonEmpty(egress.roomName) ?? nonEmpty(event.room?.name),
          room_sid: sessionId ?? undefined,
          provider: 'egress',
          reason: status,
          error: nonEmpty(egress.error),
          detail: nonEmpty(egress.egressId),
        }),
      });
    }
  }

  const ingress = event.ingressInfo;
  if (ingress?.state) {
    const status = ingressStatusName(ingress.state);
    if (INGRESS_PROVIDER_STATUSES.has(status)) {
      const run = ingress.state.resourceId || String(ingress.state.startedAt);
      findings.push({
        key: ingress.ingressId ? `ingress:${ingress.ingressId}:${run}:${status}` : webhookId && `event:${webhookId}:ingress`,
        line: derivedLine('warn', 'provider.event', sessionId, {
          webhook_id: webhookId,
          room_name: nonEmpty(ingress.roomName) ?? nonEmpty(event.room?.name),
          room_sid: sessionId ?? undefined,
          participant_identity: nonEmpty(ingress.participantIdentity),
          provider: 'ingress',
          reason: status,
          error: nonEmpty(ingress.state.error),
          detail: nonEmpty(ingress.ingressId),
        }),
      });
    }
  }

  if (event.numDropped > 0) {
    findings.push({
      key: webhookId && `event:${webhookId}:dropped`,
      line: derivedLine('warn', 'provider.event', sessionId, {
        webhook_id: webhookId,
        room_name: nonEmpty(event.room?.name),
        room_sid: sessionId ?? undefined,
        provider: 'livekit',
        reason: 'events_dropped',
        detail: `the server dropped ${event.numDropped} webhook event(s) before this one`,
      }),
    });
  }

  return findings;
}
