// breachResponse — a credential leak or host compromise, from declaration to review, driven by
// responders through updates (with validators) and signals. Reads like docs/runbooks/breach-response.md:
//   declare: recordIncident (page on-call)
//   triage:  awaitAcknowledgement → assessExposure
//   contain: awaitContainmentApproval → emergencySeal (only when proposed and approved; never in training)
//   rotate:  one rotateCredential child per credential class (each proves new works, old refused)
//   notify:  prepareTenantNotices → awaitNoticeApproval → sendTenantNotice per tenant
//   review:  awaitIncidentClose → recordIncident
// Alongside, from awareAt: the GDPR Art. 33 notice clock (durable timers) warns at 24 h and 60 h
// and pages at 72 h while the tenant notices are not all sent. Every responder action and every
// escalation is on the timeline (progress query); `vaultdr incident review` rebuilds it from history.
import type { z } from 'zod';
import { ApplicationFailure, CancellationScope, condition, defineQuery, defineSignal, defineUpdate, executeChild, isCancellation, log, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { IncidentActivities, SharedNoticeFacts } from '../../activities/emergency/incident';
import type { SealActivities } from '../../activities/emergency/seal';
import type { NotifyActivities, Severity } from '../../activities/notify/notify';
import { shortHash } from '../../common/backup';
import {
  Acknowledge,
  BreachInput,
  CloseDecision,
  ContainmentDecision,
  Finding,
  NOTICE_DEADLINE_HOURS,
  NOTICE_WARN_HOURS,
  Note,
  NoticeDecision,
  defaultClasses,
  type AcknowledgeInput,
  type BreachConfig,
  type CloseDecisionInput,
  type ContainmentDecisionInput,
  type FindingInput,
  type NoteInput,
  type NoticeDecisionInput,
  type BreachProgress,
  type BreachResult,
  type BreachStage,
  type RotationOutcome,
} from '../../common/incident';
import { samePerson } from '../../common/restore';
import { describeIssues, parseWorkflowInput } from '../../common/validate';
import { ALERT, NOTICE, SHORT_IO, STORE_IO } from '../profiles';
import { awaitHuman, describeFailure, describeRun, failRunbook, showStep, steps, summarized, type AlertContext } from '../helpers';
import { activityQueue } from '../queues';

const { assessExposure, prepareTenantNotices, recordIncident } = proxyActivities<IncidentActivities>({ ...STORE_IO, taskQueue: activityQueue('notify') });
const { sendTenantNotice } = proxyActivities<IncidentActivities>({ ...NOTICE, taskQueue: activityQueue('notify') });
const { emergencySeal } = proxyActivities<SealActivities>({ ...SHORT_IO, startToCloseTimeout: '1m', retry: { ...SHORT_IO.retry, maximumAttempts: 2 }, taskQueue: activityQueue('restore') });
const { sendAlert } = proxyActivities<NotifyActivities>({ ...ALERT, taskQueue: activityQueue('notify') });

export type BreachStep =
  | 'recordIncident'
  | 'awaitAcknowledgement'
  | 'assessExposure'
  | 'awaitContainmentApproval'
  | 'emergencySeal'
  | 'rotateCredentials'
  | 'prepareTenantNotices'
  | 'awaitNoticeApproval'
  | 'sendTenantNotices'
  | 'awaitIncidentClose'
  | 'recordReview';

export const progress = defineQuery<BreachProgress>('progress');
/** A responder joins the incident; the first acknowledgement ends triage's wait. */
export const acknowledge = defineUpdate<{ accepted: true; acknowledgedBy: string[] }, [AcknowledgeInput]>('acknowledge');
/** Approve (or refuse) the containment plan; `seal: true` approves the emergency seal when it was proposed. */
export const approveContainment = defineUpdate<{ accepted: true; approve: boolean; seal: boolean }, [ContainmentDecisionInput]>('approveContainment');
/** Approve (or refuse) the rendered tenant notices, naming the preview digest that was read. */
export const approveNotice = defineUpdate<{ accepted: true; approve: boolean }, [NoticeDecisionInput]>('approveNotice');
/** End the incident with the review's summary, contributing factors and action items. */
export const closeIncident = defineUpdate<{ accepted: true }, [CloseDecisionInput]>('closeIncident');
export const addFinding = defineSignal<[FindingInput]>('addFinding');
export const note = defineSignal<[NoteInput]>('note');


const HOUR = 3600_000;

export async function breachResponse(rawInput?: BreachInput): Promise<BreachResult> {
  describeRun(rawInput);
  const info = workflowInfo();
  const startedAt = new Date(info.runStartTime.getTime()).toISOString();
  const incidentId = `INC-${startedAt.slice(0, 16).replace(/[-:]/g, '')}Z-${shortHash(`${info.workflowId}/${info.runId}`)}`;
  const now = () => new Date(Date.now()).toISOString();
  const state: BreachProgress = {
    incidentId,
    training: false,
    severity: 'sev2',
    scope: [],
    stage: 'declare',
    step: 'validating input',
    completed: [],
    awareAt: startedAt,
    noticeDeadline: new Date(Date.parse(startedAt) + NOTICE_DEADLINE_HOURS * HOUR).toISOString(),
    acknowledgedBy: [],
    findings: [],
    rotations: [],
    timeline: [],
  };
  setHandler(progress, () => state);
  const record = (who: string, what: string, detail: string) => state.timeline.push({ at: now(), who, what, detail });
  let input!: BreachConfig;
  const stage = (s: BreachStage) => {
    state.stage = s;
    record('vault-dr', 'stage', s);
  };
  const tag = () => (state.training ? '[TRAINING] ' : '');
  const ended = () => state.stage === 'done' || state.stage === 'failed';
  let containmentDecision: ContainmentDecision | undefined;
  let noticeDecision: NoticeDecision | undefined;
  let closeDecision: CloseDecision | undefined;

  // Responders' messages. Updates are refused by their validators (no history event, nothing
  // changes) when malformed, premature or carrying anything shaped like a secret; signals cannot
  // be refused, so a malformed one is ignored with a warning and the run goes on.
  const parseOrThrow = <S extends z.ZodTypeAny>(name: string, schema: S, raw: unknown): z.output<S> => {
    const p = schema.safeParse(raw);
    if (!p.success) throw new Error(`${name}: ${describeIssues(p.error.issues)}`);
    return p.data;
  };
  setHandler(
    acknowledge,
    (raw) => {
      const a = Acknowledge.parse(raw);
      if (!state.acknowledgedBy.some((w) => samePerson(w, a.who))) state.acknowledgedBy.push(a.who);
      record(a.who, 'acknowledge', a.role ? `joined as ${a.role}` : 'joined');
      return { accepted: true, acknowledgedBy: state.acknowledgedBy };
    },
    {
      validator: (raw) => {
        parseOrThrow('acknowledge', Acknowledge, raw);
        if (ended()) throw new Error(`incident ${incidentId} is over (${state.stage})`);
      },
    },
  );
  setHandler(
    approveContainment,
    (raw) => {
      containmentDecision = ContainmentDecision.parse(raw);
      state.containment = { ...state.containment!, decision: containmentDecision };
      record(containmentDecision.who, 'approveContainment', `${containmentDecision.approve ? 'approved' : 'refused'}${containmentDecision.seal ? ' with the emergency seal' : ''}: ${containmentDecision.why}`);
      return { accepted: true, approve: containmentDecision.approve, seal: containmentDecision.seal };
    },
    {
      validator: (raw) => {
        const d = parseOrThrow('approveContainment', ContainmentDecision, raw);
        if (state.step !== 'awaitContainmentApproval') throw new Error(`incident ${incidentId} is not waiting for a containment decision (step: ${state.step})`);
        if (d.seal && !state.containment?.sealProposed) throw new Error('approveContainment: the emergency seal was not proposed for this incident (declare with --propose-seal)');
        if (d.seal && d.approve && samePerson(d.who, input.declaredBy)) throw new Error(`approveContainment: ${d.who} declared this incident; the emergency seal needs a second person to approve it (two-person rule)`);
      },
    },
  );
  setHandler(
    approveNotice,
    (raw) => {
      noticeDecision = NoticeDecision.parse(raw);
      state.notices!.decision = noticeDecision;
      record(noticeDecision.who, 'approveNotice', `${noticeDecision.approve ? 'approved' : 'refused'} notices ${noticeDecision.previewDigest}: ${noticeDecision.why}`);
      return { accepted: true, approve: noticeDecision.approve };
    },
    {
      validator: (raw) => {
        const d = parseOrThrow('approveNotice', NoticeDecision, raw);
        if (state.step !== 'awaitNoticeApproval' || !state.notices) throw new Error(`incident ${incidentId} is not waiting for notice approval (step: ${state.step})`);
        if (d.previewDigest !== state.notices.previewDigest) throw new Error(`approveNotice: digest ${d.previewDigest} is not the current preview (${state.notices.previewDigest}); read \`vaultdr incident notices preview ${info.workflowId}\` again`);
      },
    },
  );
  setHandler(
    closeIncident,
    (raw) => {
      closeDecision = CloseDecision.parse(raw);
      state.close = closeDecision;
      record(closeDecision.who, 'closeIncident', `${closeDecision.summary} (${closeDecision.actionItems.length} action item(s))`);
      return { accepted: true };
    },
    {
      validator: (raw) => {
        parseOrThrow('closeIncident', CloseDecision, raw);
        if (state.step !== 'awaitIncidentClose') throw new Error(`incident ${incidentId} cannot be closed yet (step: ${state.step}); it closes after the notices are sent`);
      },
    },
  );
  setHandler(addFinding, (raw) => {
    const p = Finding.safeParse(raw);
    if (!p.success) return void log.warn('addFinding ignored: malformed', { issues: describeIssues(p.error.issues.slice(0, 3)) });
    state.findings.push(p.data);
    record(p.data.who, 'addFinding', p.data.finding);
  });
  setHandler(note, (raw) => {
    const p = Note.safeParse(raw);
    if (!p.success) return void log.warn('note ignored: malformed', { issues: describeIssues(p.error.issues.slice(0, 3)) });
    record(p.data.who, 'note', p.data.text);
  });

  const { step, failedAt, done } = steps<BreachStep>(state as unknown as Parameters<typeof steps<BreachStep>>[0]);
  showStep('validating input');
  const alert: AlertContext = {
    workflow: 'breachResponse',
    subject: `${tag()}Incident ${incidentId}`,
    details: () => ({ incident: incidentId, severity: state.severity, scope: state.scope.join(', '), stage: state.stage, 'notice deadline': state.noticeDeadline, ...(state.training ? { mode: 'TRAINING' } : {}) }),
  };

  // An unanswered approval climbs the on-call levels: the declaration went to the first, each
  // reminder goes one level up, and the last level is paged (critical).
  const escalating = (what: string, instruction: string, isDone: () => boolean) => {
    const levels = input.onCallLevels;
    let reminders = 0;
    return awaitHuman({
      what,
      instruction,
      done: isDone,
      timeoutMinutes: input.approvalTimeoutMinutes,
      remindEveryMinutes: input.escalateEveryMinutes,
      escalateAfter: Math.max(1, levels.length - 1),
      state,
      alert: {
        ...alert,
        details: () => {
          const level = levels[Math.min(++reminders, levels.length - 1)]!;
          record('vault-dr', 'escalation', `${what} unanswered for ${reminders * input.escalateEveryMinutes} min: escalated to ${level}`);
          return { ...alert.details!(), 'on-call level': level };
        },
      },
    });
  };

  let noticesSent = false;
  const deadlineScope = new CancellationScope();
  let deadlineWatch: Promise<void> = Promise.resolve();
  try {
    input = parseWorkflowInput('breachResponse', BreachInput, rawInput);
    Object.assign(state, {
      training: input.training,
      severity: input.severity,
      scope: input.scope,
      awareAt: input.awareAt ?? startedAt,
      noticeDeadline: new Date(Date.parse(input.awareAt ?? startedAt) + NOTICE_DEADLINE_HOURS * HOUR).toISOString(),
    });
    alert.subject = `${tag()}Incident ${incidentId}`;
    const classes = input.credentialClasses ?? defaultClasses(input.scope);
    record(input.declaredBy ?? 'unknown', 'declare', `${input.severity} ${input.scope.join(', ')}: ${input.summary}${input.training ? ' (TRAINING)' : ''}`);

    // The GDPR Art. 33 clock runs beside the stages, on durable timers.
    deadlineWatch = deadlineScope.run(async () => {
      const aware = Date.parse(state.awareAt);
      for (const hours of [...NOTICE_WARN_HOURS, NOTICE_DEADLINE_HOURS]) {
        const wait = aware + hours * HOUR - Date.now();
        if (wait > 0 && (await condition(() => noticesSent, wait))) return;
        if (noticesSent) return;
        const last = hours === NOTICE_DEADLINE_HOURS;
        record('vault-dr', 'deadline', `${hours} h since awareness (${state.awareAt}) and the tenant notices are not all sent${last ? ': the 72 h deadline has passed' : ''}`);
        const severity: Severity = last ? 'critical' : 'warning';
        await sendAlert({
          severity,
          dedupKey: `breachResponse/${info.workflowId}/notice-deadline/${hours}h`,
          summary: `${tag()}Incident ${incidentId}: ${last ? 'the 72 h notification deadline has PASSED' : `${hours} h of 72 h gone`} and tenant notices are not sent`,
          workflowId: info.workflowId,
          runId: info.runId,
          details: { ...alert.details!(), 'awareness at': state.awareAt, 'what to do': `approve and send the notices: vaultdr incident notices preview ${info.workflowId}` },
        }).catch((err: unknown) => {
          if (isCancellation(err)) throw err;
        });
      }
    });
    deadlineWatch.catch(() => undefined);

    // declare
    await step('recordIncident', () => summarized(recordIncident, `${tag()}Record incident ${incidentId}`, { incidentId, record: { incidentId, workflowId: info.workflowId, input, stage: 'declared', timeline: state.timeline } }));
    await sendAlert({
      severity: input.severity === 'sev3' ? 'warning' : 'critical',
      dedupKey: `breachResponse/${info.workflowId}/declared`,
      summary: `${tag()}Incident ${incidentId} declared (${input.severity}, ${input.scope.join(', ')}): acknowledge with vaultdr incident ack ${info.workflowId} --who NAME`,
      workflowId: info.workflowId,
      runId: info.runId,
      details: { ...alert.details!(), summary: input.summary },
    });

    // triage
    stage('triage');
    await step('awaitAcknowledgement', () => escalating('acknowledgement', `a responder runs: vaultdr incident ack ${info.workflowId} --who NAME`, () => state.acknowledgedBy.length > 0));
    const exposure = await step('assessExposure', () => assessExposure({ scope: input.scope, tenants: input.tenants }));
    record('vault-dr', 'assessExposure', `${exposure.vault}; tenants: ${exposure.tenants.map((t) => `${t.id} (${t.secretPaths} paths)`).join(', ')}; classes to rotate: ${classes.join(', ')}`);

    // contain
    stage('contain');
    state.containment = { sealProposed: input.proposeSeal };
    await step('awaitContainmentApproval', () =>
      escalating('containment approval', `a responder decides: vaultdr incident approve-containment ${info.workflowId} --who NAME --why REASON${input.proposeSeal ? ' [--seal]' : ''}`, () => containmentDecision !== undefined),
    );
    if (containmentDecision!.approve && containmentDecision!.seal) {
      if (input.training) {
        record('vault-dr', 'emergencySeal', 'TRAINING: the seal was approved; nothing was sealed (training never touches the cluster)');
      } else {
        const sealed = await step('emergencySeal', () => summarized(emergencySeal, `Emergency seal for incident ${incidentId}`, { incidentId }));
        state.containment.sealed = sealed.detail;
        record('vault-dr', 'emergencySeal', sealed.detail);
      }
    }

    // rotate: one child per class, one after the other (a revoked token prefix may be one the next child's worker uses)
    stage('rotate');
    await step('rotateCredentials', async () => {
      for (const credentialClass of classes) {
        const outcome = await executeChild<(req: unknown) => Promise<RotationOutcome>>('rotateCredential', {
          workflowId: `${info.workflowId}-rotate-${credentialClass}`,
          args: [{ credentialClass, ...(input.rotationScopes[credentialClass] ? { scope: input.rotationScopes[credentialClass] } : {}), training: input.training, incidentId: info.workflowId }],
          staticSummary: `${tag()}Rotate ${credentialClass} for incident ${incidentId}`,
        }).catch((err: unknown): RotationOutcome => {
          if (isCancellation(err)) throw err;
          const f = describeFailure(err);
          return { credentialClass, rotated: false, newVerified: false, oldRefused: false, oldLeftInPlace: true, detail: `rotation failed: ${f?.message ?? 'unknown failure'}` };
        });
        state.rotations.push(outcome);
        record('vault-dr', 'rotateCredential', `${credentialClass}: ${outcome.rotated && outcome.newVerified && outcome.oldRefused ? 'rotated, new verified, old refused' : outcome.detail}`);
        if (!(outcome.rotated && outcome.newVerified && outcome.oldRefused)) {
          await sendAlert({
            severity: 'critical',
            dedupKey: `breachResponse/${info.workflowId}/rotation/${credentialClass}`,
            summary: `${tag()}Incident ${incidentId}: rotation of ${credentialClass} did not complete${outcome.oldLeftInPlace ? ' (the old credential is still in place)' : ''}`,
            workflowId: info.workflowId,
            runId: info.runId,
            details: { ...alert.details!(), detail: outcome.detail },
          });
        }
      }
    });

    // notify
    stage('notify');
    for (;;) {
      const facts = noticeFacts(input, state);
      const prepared = await step('prepareTenantNotices', () => prepareTenantNotices({ incidentId, training: input.training, templateVersion: input.templateVersion, tenants: input.tenants, facts }));
      state.notices = { ...prepared, deliveries: prepared.previews.map((p) => ({ tenantId: p.tenantId, to: p.to, status: 'pending', attempts: 0 })) };
      noticeDecision = undefined;
      await step('awaitNoticeApproval', () =>
        escalating('notice approval', `read: vaultdr incident notices preview ${info.workflowId}; then: vaultdr incident approve-notice ${info.workflowId} --digest ${prepared.previewDigest} --who NAME --why REASON`, () => noticeDecision !== undefined),
      );
      if (noticeDecision!.approve) break;
      // A refused notice is prepared again (with the findings added since) and waits for a new decision.
      state.completed = state.completed.filter((s) => s !== 'prepareTenantNotices' && s !== 'awaitNoticeApproval');
    }
    await step('sendTenantNotices', async () => {
      await Promise.all(
        state.notices!.previews.map(async (notice, i) => {
          const d = state.notices!.deliveries[i]!;
          try {
            const sent = await summarized(sendTenantNotice, `${tag()}Notice to tenant ${notice.tenantId}`, { incidentId, training: input.training, notice });
            // Workflow time, the same clock as the deadline (the relay's own time is in the S3 record).
            Object.assign(d, { status: 'sent', attempts: sent.attempt, messageId: sent.messageId, sentAt: now(), detail: sent.reused ? 'sent by an earlier attempt' : 'accepted by the relay' });
            record('vault-dr', 'sendTenantNotice', `${notice.tenantId} <${notice.to}>: accepted (${sent.messageId})`);
          } catch (err) {
            if (isCancellation(err)) throw err;
            Object.assign(d, { status: 'failed', detail: describeFailure(err)?.message ?? 'failed' });
            record('vault-dr', 'sendTenantNotice', `${notice.tenantId} <${notice.to}>: NOT delivered: ${d.detail}`);
          }
        }),
      );
      const failed = state.notices!.deliveries.filter((d) => d.status !== 'sent');
      if (failed.length) {
        throw ApplicationFailure.create({ type: 'NoticeDeliveryFailed', nonRetryable: true, message: `notices to ${failed.map((d) => d.tenantId).join(', ')} not delivered after every retry; send them by hand (runbook) and record it with vaultdr incident note` });
      }
    });
    noticesSent = true;

    // review
    stage('review');
    await step('awaitIncidentClose', () =>
      awaitHuman({
        what: 'incident close',
        instruction: `after the review meeting: vaultdr incident close ${info.workflowId} --who NAME --summary TEXT (docs/runbooks/post-incident-review.md)`,
        done: () => closeDecision !== undefined,
        timeoutMinutes: 30 * 24 * 60,
        remindEveryMinutes: 24 * 60,
        escalateAfter: 1000, // a review that waits is a reminder, never a page
        state,
        alert,
      }),
    );
    const saved = await step('recordReview', () =>
      summarized(recordIncident, `${tag()}Record the review of ${incidentId}`, { incidentId, record: { incidentId, workflowId: info.workflowId, input, stage: 'closed', progress: state } }),
    );
    done();
    state.stage = 'done';
    record('vault-dr', 'stage', 'done');
    const sentAt = state.notices!.deliveries.map((d) => Date.parse(d.sentAt ?? '')).filter((t) => !Number.isNaN(t));
    return {
      incidentId,
      training: input.training,
      rotations: state.rotations,
      noticesSent: sentAt.length,
      noticesSentWithinDeadline: sentAt.every((t) => t <= Date.parse(state.noticeDeadline)),
      recordKey: saved.key,
      timeline: state.timeline,
    };
  } catch (err) {
    const failedStep = failedAt() ?? state.step;
    return failRunbook(err, {
      failedStep,
      state,
      alert,
      record: () => recordIncident({ incidentId, record: { incidentId, workflowId: info.workflowId, input: input ?? null, stage: 'failed', failedStep, progress: state } }),
      failureMessage: (f) => `incident ${incidentId} stopped at ${failedStep}: ${f.message}`,
    }).finally(() => {
      state.stage = 'failed';
    });
  } finally {
    deadlineScope.cancel();
  }
}

/** The facts every tenant's notice shares, from the input, the findings, containment and rotations (never a value). */
function noticeFacts(input: BreachConfig, s: BreachProgress): SharedNoticeFacts {
  const n = input.notice;
  const rotated = s.rotations.map((r) => `  - ${r.credentialClass}: ${r.rotated && r.newVerified && r.oldRefused ? 'replaced; the new credential works and the old one is refused' : `NOT complete (${r.oldLeftInPlace ? 'old credential still in place' : 'old credential revoked'})`}`);
  const c = s.containment;
  return {
    incident_id: s.incidentId,
    aware_at: s.awareAt,
    next_update: new Date(Date.now() + 24 * HOUR).toISOString(),
    what_happened: [input.summary, ...s.findings.map((f) => `- ${f.finding}`)].join('\n'),
    nature: n.nature ?? `unauthorised access to credentials of the secrets platform (severity ${s.severity}; affected: ${s.scope.join(', ')})`,
    breach_window: n.breachWindow ?? `up to ${s.awareAt}; the start is still being established`,
    data_subjects: n.dataSubjects ?? 'not yet known. The platform stores credentials, not personal data records; where those credentials open systems holding personal data you control, you as controller assess the data subjects concerned (we will help with access logs)',
    consequences: n.consequences ?? 'someone holding the affected credentials could have read or changed the secrets at the paths listed above, and used them against the systems they open, until they were rotated',
    tenant_actions: n.tenantActions ?? 'Fetch the rotated credentials again from the platform and re-deploy the services that use them; review the access logs of the systems those credentials open for the breach window; tell us at the contact point below about any misuse you find',
    law_enforcement: n.lawEnforcementDelay ? 'This notice was delayed at the request of law enforcement.' : 'This notice was not delayed at the request of law enforcement.',
    measures: [
      c?.decision?.approve ? `  - containment approved by ${c.decision.who}${c.sealed ? `; the secrets service was sealed (${c.sealed})` : ''}` : '  - containment under way',
      `  - ${s.rotations.filter((r) => r.rotated && r.newVerified && r.oldRefused).length} of ${s.rotations.length} affected credential class(es) replaced by a procedure that proves the new credential works and the old one is refused (status below)`,
      '  - the incident is documented and will be reviewed (GDPR Art. 33(5))',
    ].join('\n'),
    rotation_status: rotated.length ? rotated.join('\n') : '  - no credential class rotated',
  };
}
