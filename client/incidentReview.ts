// `vaultdr incident review <workflow-id>`: the post-incident review's timeline, rebuilt from the
// incident workflow's HISTORY (not from its query, which a finished or failed run may no longer
// answer): every responder update and signal (who, when, what), every step's activity, every alert
// the workflow sent (escalations and the 72 h clock), the rotation children, and the end. Payloads
// are decoded with the codec, as the Web UI does. The output follows docs/runbooks/post-incident-review.md.
import type { Client } from '@temporalio/client';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';
import { EncryptionCodec } from '../infra/temporal/codec';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

export interface ReviewEntry {
  at: string;
  who: string;
  what: string;
  detail: string;
}

export interface IncidentReview {
  workflowId: string;
  status: string;
  declaredBy?: string;
  input?: Record<string, unknown>;
  close?: { who: string; summary: string; contributingFactors: string[]; actionItems: { what: string; owner: string; due: string }[] };
  timeline: ReviewEntry[];
}

const timeOf = (e: HistoryEvent) => {
  const t = e.eventTime;
  return t ? new Date(Number(t.seconds ?? 0) * 1000 + Math.round((t.nanos ?? 0) / 1e6)).toISOString() : '';
};

/** Builds the review from a fetched history; `decode` turns payloads into values (codec + converter). */
export async function buildReview(workflowId: string, events: HistoryEvent[], decode: (p: Payload[]) => Promise<unknown[]>): Promise<IncidentReview> {
  const first = async (payloads: Payload[] | null | undefined): Promise<any> => (payloads?.length ? (await decode(payloads))[0] : undefined);
  const scheduled = new Map<string, string>();
  const children = new Map<string, string>();
  const review: IncidentReview = { workflowId, status: 'Running', timeline: [] };
  const add = (e: HistoryEvent, who: string, what: string, detail: string) => review.timeline.push({ at: timeOf(e), who, what, detail: detail.replace(/\s+/g, ' ').trim().slice(0, 300) });
  for (const e of events) {
    if (e.workflowExecutionStartedEventAttributes) {
      const input = ((await first(e.workflowExecutionStartedEventAttributes.input?.payloads)) ?? {}) as Record<string, unknown>;
      review.input = input;
      review.declaredBy = typeof input.declaredBy === 'string' ? input.declaredBy : undefined;
      add(e, review.declaredBy ?? 'unknown', 'declare', `${String(input.severity ?? 'sev2')} ${Array.isArray(input.scope) ? input.scope.join(', ') : 'vault'}: ${String(input.summary ?? '')}${input.training ? ' (TRAINING)' : ''}`);
    } else if (e.workflowExecutionUpdateAcceptedEventAttributes) {
      const req = e.workflowExecutionUpdateAcceptedEventAttributes.acceptedRequest;
      const name = req?.input?.name ?? 'update';
      const arg = ((await first(req?.input?.args?.payloads)) ?? {}) as Record<string, any>;
      const detail =
        name === 'acknowledge' ? `joined${arg.role ? ` as ${arg.role}` : ''}`
        : name === 'approveContainment' ? `${arg.approve ? 'approved' : 'refused'}${arg.seal ? ' with the emergency seal' : ''}: ${arg.why ?? ''}`
        : name === 'approveNotice' ? `${arg.approve ? 'approved' : 'refused'} notices ${arg.previewDigest ?? ''}: ${arg.why ?? ''}`
        : name === 'closeIncident' ? String(arg.summary ?? '')
        : JSON.stringify(arg);
      if (name === 'closeIncident') review.close = { who: arg.who, summary: arg.summary, contributingFactors: arg.contributingFactors ?? [], actionItems: arg.actionItems ?? [] };
      add(e, String(arg.who ?? req?.meta?.identity ?? 'unknown'), name, detail);
    } else if (e.workflowExecutionSignaledEventAttributes) {
      const a = e.workflowExecutionSignaledEventAttributes;
      const arg = ((await first(a.input?.payloads)) ?? {}) as Record<string, any>;
      add(e, String(arg.who ?? a.identity ?? 'unknown'), a.signalName ?? 'signal', String(arg.finding ?? arg.text ?? JSON.stringify(arg)));
    } else if (e.activityTaskScheduledEventAttributes) {
      const a = e.activityTaskScheduledEventAttributes;
      const name = a.activityType?.name ?? 'activity';
      scheduled.set(String(e.eventId), name);
      if (name === 'sendAlert') {
        const req = ((await first(a.input?.payloads)) ?? {}) as { severity?: string; summary?: string };
        add(e, 'vault-dr', `alert (${req.severity ?? '?'})`, req.summary ?? '');
      }
    } else if (e.activityTaskCompletedEventAttributes) {
      const name = scheduled.get(String(e.activityTaskCompletedEventAttributes.scheduledEventId)) ?? 'activity';
      if (name !== 'sendAlert') add(e, 'vault-dr', name, 'completed');
    } else if (e.activityTaskFailedEventAttributes) {
      const name = scheduled.get(String(e.activityTaskFailedEventAttributes.scheduledEventId)) ?? 'activity';
      const f = e.activityTaskFailedEventAttributes.failure;
      const attrs = f?.encodedAttributes ? ((await decode([f.encodedAttributes as Payload]))[0] as { message?: string }) : undefined;
      add(e, 'vault-dr', name, `FAILED: ${attrs?.message ?? f?.message ?? ''}`);
    } else if (e.startChildWorkflowExecutionInitiatedEventAttributes) {
      const a = e.startChildWorkflowExecutionInitiatedEventAttributes;
      children.set(a.workflowId ?? '', a.workflowType?.name ?? 'child');
      add(e, 'vault-dr', `${a.workflowType?.name ?? 'child'} started`, a.workflowId ?? '');
    } else if (e.childWorkflowExecutionCompletedEventAttributes) {
      const a = e.childWorkflowExecutionCompletedEventAttributes;
      const r = ((await first(a.result?.payloads)) ?? {}) as { credentialClass?: string; rotated?: boolean; newVerified?: boolean; oldRefused?: boolean; detail?: string };
      add(e, 'vault-dr', `${children.get(a.workflowExecution?.workflowId ?? '') ?? 'child'} completed`, `${r.credentialClass ?? ''}: rotated=${String(r.rotated)} newVerified=${String(r.newVerified)} oldRefused=${String(r.oldRefused)}; ${r.detail ?? ''}`);
    } else if (e.childWorkflowExecutionFailedEventAttributes) {
      const a = e.childWorkflowExecutionFailedEventAttributes;
      add(e, 'vault-dr', `${children.get(a.workflowExecution?.workflowId ?? '') ?? 'child'} FAILED`, a.workflowExecution?.workflowId ?? '');
    } else if (e.workflowExecutionCompletedEventAttributes) {
      review.status = 'Completed';
      add(e, 'vault-dr', 'closed', 'the incident workflow completed');
    } else if (e.workflowExecutionFailedEventAttributes) {
      review.status = 'Failed';
      const f = e.workflowExecutionFailedEventAttributes.failure;
      const attrs = f?.encodedAttributes ? ((await decode([f.encodedAttributes as Payload]))[0] as { message?: string }) : undefined;
      add(e, 'vault-dr', 'failed', attrs?.message ?? f?.message ?? '');
    } else if (e.workflowExecutionCanceledEventAttributes) {
      review.status = 'Cancelled';
      add(e, 'vault-dr', 'cancelled', '');
    } else if (e.workflowExecutionTerminatedEventAttributes) {
      review.status = 'Terminated';
      add(e, String(e.workflowExecutionTerminatedEventAttributes.identity ?? 'unknown'), 'terminated', e.workflowExecutionTerminatedEventAttributes.reason ?? '');
    }
  }
  return review;
}

/** Fetches and decodes the history of `workflowId` with the CLI's codec. */
export async function reviewFromHistory(client: Client, codec: EncryptionCodec, workflowId: string): Promise<IncidentReview> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  return buildReview(workflowId, history.events ?? [], async (payloads) => (await codec.decode(payloads)).map((p) => defaultPayloadConverter.fromPayload(p)));
}

/** The review document's skeleton (docs/runbooks/post-incident-review.md), with the timeline filled in. */
export function renderReview(r: IncidentReview): string {
  const cell = (s: string) => s.replace(/\|/g, '\\|');
  const lines = [
    `# Post-incident review: ${r.workflowId}${r.input?.training ? ' (TRAINING)' : ''}`,
    '',
    `Status: ${r.status}. Severity: ${String(r.input?.severity ?? '?')}. Scope: ${Array.isArray(r.input?.scope) ? (r.input.scope as string[]).join(', ') : '?'}. Declared by: ${r.declaredBy ?? '?'}.`,
    'Blameless: this review asks what made the incident possible and what made the response slow, never who is to blame.',
    '',
    '## Summary',
    r.close?.summary ?? '(to be written in the review meeting)',
    '',
    '## Timeline (from the workflow history)',
    '',
    '| when (UTC) | who | what | detail |',
    '|---|---|---|---|',
    ...r.timeline.map((t) => `| ${t.at} | ${cell(t.who)} | ${cell(t.what)} | ${cell(t.detail)} |`),
    '',
    '## Contributing factors',
    ...(r.close?.contributingFactors.length ? r.close.contributingFactors.map((f) => `- ${f}`) : ['- (to be written in the review meeting)']),
    '',
    '## Action items',
    '',
    '| what | owner | due |',
    '|---|---|---|',
    ...(r.close?.actionItems.length ? r.close.actionItems.map((a) => `| ${cell(a.what)} | ${cell(a.owner)} | ${a.due} |`) : ['| (to be agreed) | | |']),
  ];
  return lines.join('\n');
}
