// drDrill's credential-compromise scenario (common/drills.ts), called by drDrill after its
// preconditions; drDrill writes the report. Reads like docs/runbooks/dr-drills.md:
//   checkSteadyState  checkDrillCredential: the drill credential (drills.credentialClass/Scope,
//                     KV version N) logs in
//   injectFault       a TRAINING breachResponse child declares that class leaked (sev3: Slack and
//                     e-mail, never a page); automated mode: respondToTrainingIncident answers as
//                     the responders (acknowledge, containment without seal, notice digest, close);
//                     assisted: the facilitator answers with `vaultdr incident ...`
//   awaitDetection    awaitDeclaredMail: the incident's "declared" e-mail in the alert inbox; time to detect
//   verifyRecovery    the incident's rotateCredential result, then the drill's own probes
//                     (verifyDrillCredential: KV version N+1 logs in, version N is refused) and the
//                     tenant notices (one per tenant, every one TRAINING)
//   revertFault       closeTrainingIncident, ALWAYS and non-cancellable: the next drill's "no
//                     incident running" precondition must hold whatever happened
// RTO: declared → the rotation recorded verified by the incident (target 30 min).
import { CancellationScope, startChild, type ChildWorkflowHandle } from '@temporalio/workflow';
import { proxyActivities } from '@temporalio/workflow';
import type { z } from 'zod';
import type { DrillCredentialActivities, TrainingIncidentActivities, TrainingIncidentFacts } from '../../activities/drills/credential';
import { SCENARIOS } from '../../common/drills';
import type { CredentialDrillFacts, DrDrillInput, DrDrillReport, DrDrillStep, DrillFindingDraft, TimelineEvent } from '../../common/drillRun';
import type { BreachInput, BreachResult } from '../../common/incident';
import { POLL, describeFailure, summarized } from '../helpers';
import { DRILL, STORE_IO, STAGING } from '../profiles';
import { activityQueue } from '../queues';
import { steadyStateFailure } from './steadyState';

const { checkDrillCredential, verifyDrillCredential } = proxyActivities<DrillCredentialActivities>({ ...STAGING, taskQueue: activityQueue('restore') });
const { awaitDeclaredMail } = proxyActivities<TrainingIncidentActivities>({ ...POLL, heartbeatTimeout: '20s', taskQueue: activityQueue('notify') });
const { respondToTrainingIncident } = proxyActivities<TrainingIncidentActivities>({ ...DRILL, startToCloseTimeout: '25h', taskQueue: activityQueue('notify') });
const { closeTrainingIncident } = proxyActivities<TrainingIncidentActivities>({ ...STORE_IO, taskQueue: activityQueue('notify') });

/** What drDrill lends a scenario: its step() (assisted confirmations, abort), timeline, report and state. */
export interface DrillContext {
  input: z.output<typeof DrDrillInput>;
  /** drDrill's workflow id (children are named after it). */
  workflowId: string;
  step: <T>(name: DrDrillStep, fn: () => Promise<T>, opts?: { always?: boolean }) => Promise<T>;
  event: (kind: TimelineEvent['kind'], what: string, at?: number) => void;
  report: Partial<DrDrillReport>;
  /** Progress fields the scenario fills in. */
  state: { rtoMs?: number; detectMs?: number; alert?: DrDrillReport['alert'] };
  /** The steady state did not hold: the drill is a refusal (warning), not a failure. */
  refused: () => void;
  /** From here a report is written even when the drill fails. */
  faultStarted: () => void;
  /** Scenario-specific findings, added to drDrill's own (findingsOf). */
  findings: DrillFindingDraft[];
}

const iso = (ms: number) => new Date(ms).toISOString();

/** The findings of the scenario's own checks (kinds stable across drills: the re-test matches on them). */
export function credentialFindings(c: CredentialDrillFacts): DrillFindingDraft[] {
  const scenario = 'credential-compromise';
  const runbook = SCENARIOS[scenario].runbooks[0]!;
  const out: DrillFindingDraft[] = [];
  const what = `${c.credentialClass} (${c.scope})`;
  if (!c.rotation) out.push({ kind: 'rotation-missing', title: `${scenario}: the incident did not rotate the class`, severity: 'high', runbookSection: 'docs/runbooks/credential-rotation.md', evidence: `no rotateCredential result for ${what} in the incident` });
  else if (!(c.rotation.rotated && c.rotation.newVerified && c.rotation.oldRefused)) out.push({ kind: 'rotation-incomplete', title: `${scenario}: the emergency rotation did not complete`, severity: 'high', runbookSection: 'docs/runbooks/credential-rotation.md', evidence: c.rotation.detail.slice(0, 300) });
  if (c.newWorks === false) out.push({ kind: 'new-credential-refused', title: `${scenario}: the new credential does not work`, severity: 'high', runbookSection: 'docs/runbooks/credential-rotation.md', evidence: c.probeDetail ?? 'the drill probe refused it' });
  if (c.oldRefused === false) out.push({ kind: 'old-credential-accepted', title: `${scenario}: the leaked credential still works`, severity: 'critical', runbookSection: 'docs/runbooks/credential-rotation.md', evidence: c.probeDetail ?? 'the drill probe logged in with it' });
  if (c.tenants !== undefined && (c.tenants === 0 || (c.noticesSent ?? 0) < c.tenants)) out.push({ kind: 'notices-missing', title: `${scenario}: not every tenant got a notice`, severity: 'medium', runbookSection: runbook, evidence: `${c.noticesSent ?? 0} notice(s) sent for ${c.tenants} tenant(s)` });
  if (c.tenants && c.noticesTraining === false) out.push({ kind: 'notice-not-training', title: `${scenario}: a training notice is not marked TRAINING`, severity: 'high', runbookSection: runbook, evidence: 'a prepared notice subject lacks [TRAINING]' });
  return out;
}

export async function runCredentialCompromise(ctx: DrillContext): Promise<void> {
  const { input } = ctx;
  const s = SCENARIOS['credential-compromise'];
  const detectionTimeoutSeconds = input.detectionTimeoutSeconds ?? s.detection.withinSeconds + 60;

  const steady = await ctx
    .step('checkSteadyState', async () => {
      const c = await summarized(checkDrillCredential, `${s.id}: does the drill credential work now?`);
      if (!c.works) throw steadyStateFailure(c.detail);
      return c;
    })
    .catch((err: unknown) => {
      const f = describeFailure(err);
      if (f?.errorType === 'DrillSteadyStateNotHolding') ctx.refused();
      throw err;
    });

  const incidentWorkflowId = `${ctx.workflowId}-incident`;
  const facts: CredentialDrillFacts = { credentialClass: steady.credentialClass, scope: steady.scope, kvPath: steady.kvPath, versionBefore: steady.version, incidentWorkflowId };
  ctx.report.credential = facts;
  let child: ChildWorkflowHandle<(i?: BreachInput) => Promise<BreachResult>> | undefined;
  let faultAt = 0;
  let responded: Promise<TrainingIncidentFacts> | undefined;
  let outcome: Promise<BreachResult> | undefined;
  ctx.faultStarted();
  try {
    await ctx.step('injectFault', async () => {
      const who = input.facilitator ?? 'dr-drill';
      child = await startChild<(i?: BreachInput) => Promise<BreachResult>>('breachResponse', {
        workflowId: incidentWorkflowId,
        staticSummary: `[TRAINING] DR drill: ${steady.credentialClass} ${steady.scope} declared leaked`,
        args: [
          {
            training: true,
            severity: 'sev3',
            scope: ['vault'],
            summary: `DR drill (credential-compromise): the ${steady.credentialClass} of ${steady.scope} is declared leaked`,
            declaredBy: who,
            credentialClasses: [steady.credentialClass as 'approle-secret-id'],
            rotationScopes: { [steady.credentialClass]: steady.scope },
            proposeSeal: false,
            approvalTimeoutMinutes: input.incidentTimeoutMinutes,
            escalateEveryMinutes: Math.max(1, Math.min(15, Math.floor(input.incidentTimeoutMinutes / 4))),
          },
        ],
      });
      faultAt = Date.now();
      ctx.report.fault = { node: `${steady.credentialClass}/${steady.scope}`, injectedAt: iso(faultAt), kind: 'declared leaked in a TRAINING breachResponse' };
      ctx.event('fault', `[TRAINING] incident declared: ${steady.credentialClass} ${steady.scope} leaked`, faultAt);
      outcome = child.result();
      outcome.catch(() => undefined);
      // Automated: the drill answers as the responders; assisted: the facilitator does, the drill watches.
      responded = respondToTrainingIncident({ workflowId: incidentWorkflowId, act: input.mode === 'automated', by: who, untilIso: iso(faultAt + input.incidentTimeoutMinutes * 60_000) });
      responded.catch(() => undefined);
    });

    const alert = await ctx.step('awaitDetection', () =>
      summarized(awaitDeclaredMail, `wait for the incident's declared e-mail`, { workflowId: incidentWorkflowId, sinceIso: iso(faultAt), untilIso: iso(faultAt + detectionTimeoutSeconds * 1000) }),
    );
    ctx.report.alert = ctx.state.alert = alert;
    if (alert.observed && alert.startsAt) {
      ctx.report.detectMs = ctx.state.detectMs = Math.max(0, Date.parse(alert.startsAt) - faultAt);
      ctx.event('alert', `declared e-mail in the alert inbox`, Date.parse(alert.startsAt));
    }

    await ctx.step('verifyRecovery', async () => {
      const r = await responded!;
      Object.assign(facts, { incidentId: r.incidentId, tenants: r.tenants, noticesSent: r.noticesSent, noticesTraining: r.noticesTraining, responderActions: r.actions });
      let result: BreachResult | undefined;
      try {
        result = await outcome!;
      } catch (err) {
        facts.closed = `the incident failed: ${describeFailure(err)?.message ?? 'unknown'}`;
      }
      if (result) {
        facts.closed = 'closed by its responders';
        const rot = result.rotations.find((x) => x.credentialClass === steady.credentialClass);
        if (rot) facts.rotation = { rotated: rot.rotated, newVerified: rot.newVerified, oldRefused: rot.oldRefused, detail: rot.detail };
        const at = (pred: (e: BreachResult['timeline'][number]) => boolean) => {
          const e = result!.timeline.find(pred);
          return e ? Date.parse(e.at) : undefined;
        };
        const rotateStart = at((e) => e.what === 'stage' && e.detail === 'rotate');
        const rotated = at((e) => e.what === 'rotateCredential' && e.detail.startsWith(`${steady.credentialClass}:`));
        if (rotateStart !== undefined && rotated !== undefined) facts.rotationMs = rotated - rotateStart;
        if (rotated !== undefined && rot?.rotated) {
          ctx.report.rtoMs = ctx.state.rtoMs = rotated - faultAt;
          ctx.event('recovered', `${steady.credentialClass} rotated: new verified, old refused (rotateCredential)`, rotated);
        }
        const closedAt = at((e) => e.what === 'closeIncident');
        if (closedAt !== undefined) ctx.event('step', 'training incident closed by its responder', closedAt);
      }
      const probe = await summarized(verifyDrillCredential, `${s.id}: new works, old refused?`, { versionBefore: steady.version });
      Object.assign(facts, { versionAfter: probe.versionAfter, newWorks: probe.newWorks, oldRefused: probe.oldRefused, probeDetail: probe.detail });
      ctx.findings.push(...credentialFindings(facts));
    });
  } finally {
    // ALWAYS: the training incident must be over (closed, or cancelled with its rotation child) before the drill ends.
    await CancellationScope.nonCancellable(async () => {
      const t0 = Date.now();
      const closed = await ctx.step('revertFault', () => summarized(closeTrainingIncident, `make sure the training incident ${incidentWorkflowId} is over`, { workflowId: incidentWorkflowId, by: input.facilitator ?? 'dr-drill', reason: 'the drill ended' }), { always: true });
      ctx.report.revertMs = Date.now() - t0;
      if (closed.how !== 'already closed') facts.closed = `${facts.closed ? `${facts.closed}; ` : ''}revert: ${closed.detail}`;
      ctx.event('revert', closed.how === 'already closed' ? 'training incident over' : `training incident ${closed.how} by the revert`);
    });
  }
}
