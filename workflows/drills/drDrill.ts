// drDrill — one disaster-recovery drill of a catalogued scenario (common/drills.ts), reads like
// docs/runbooks/dr-drills.md: checkDrillPreconditions (automated scenario, drillable target, no
// other drill or incident running; resolved findings to re-test) → checkSteadyState (refuses when
// it does not hold) → injectFault (the failover drill's round: SIGKILL of the leader with the
// probe writer running, which measures the RTO and the acknowledged writes lost) → awaitDetection
// (the scenario's alert in Alertmanager: which, when, on which receiver) → revertFault (ALWAYS, in a
// non-cancellable scope, also after an abort or a failure; a worker killed mid-drill resumes and
// reverts) → verifyRecovery (steady state again) → writeReport (findings opened as drillFinding
// workflows, the report in the bucket and to the distribution list).
// Scenario cluster-loss (clusterLoss below): checkSteadyState also needs a verified backup and a
// drill cluster the production restore points at → injectFault (every node killed, its data
// removed) → awaitDetection → rebuildCluster (a new, empty cluster) → restoreLatestBackup (child
// restoreVault, production path: approved through approveRestore by the facilitator, or by the
// drill in automated mode; unsealed by the custodians' activity) → verifyRecovery (the restored
// cluster is whole) → revertFault (ALWAYS: the drill cluster rebuilt to its normal state) → writeReport.
// Scenarios vps-compromise (vpsCompromise.ts: the old host quarantined, a child migrateVps onto the
// new host, the credentials it held rotated) and credential-compromise (credentialCompromise.ts: a
// TRAINING breachResponse child rotates the leaked credential) run their own steps between
// checkDrillPreconditions and writeReport.
// Assisted mode: a facilitator confirms each step (update confirmStep) and may abort (update abort).
import {
  ApplicationFailure,
  CancellationScope,
  ParentClosePolicy,
  condition,
  defineQuery,
  defineUpdate,
  isCancellation,
  patched,
  proxyActivities,
  setHandler,
  startChild,
  workflowInfo,
} from '@temporalio/workflow';
import type { HaActivities } from '../../activities/ha/failover';
import type { DrillActivities } from '../../activities/drills/drill';
import type { ClusterLossActivities } from '../../activities/ha/clusterLoss';
import type { restoreVault } from '../restore/restoreVault';
import { SCENARIOS, type ScenarioId } from '../../common/drills';
import { ROUTES } from '../../common/alerts';
import {
  AbortUpdate,
  CONFIRMED_STEPS,
  ConfirmStepUpdate,
  DrDrillInput,
  type AlertObservation,
  type DrDrillReport,
  type DrDrillResult,
  type DrDrillStep,
  type DrillFindingDraft,
  type RetestedFinding,
  type TimelineEvent,
  sameFinding,
} from '../../common/drillRun';
import type { InjectedFault } from '../../common/ha';
import { describeIssues, parseWorkflowInput } from '../../common/validate';
import type { z } from 'zod';
import { POLL, awaitHuman, describeFailure, describeRun, failRunbook, showStep, steps, summarized, type WaitState } from '../helpers';
import { DRILL, SHORT_IO, STORE_IO } from '../profiles';
import { activityQueue } from '../queues';
import { runCredentialCompromise } from './credentialCompromise';
import { checkNewestVerifiedBackup } from './steadyState';
import { vpsCompromise, vpsSteadyState, type DrillContext } from './vpsCompromise';

// The fault is the failover drill's (restore role: it holds the HA cluster's unseal shares and drill token).
const { checkClusterHealthy, runFailoverRound, healFault, healLeftoverFault } = proxyActivities<HaActivities>({ ...DRILL, taskQueue: activityQueue('restore') });
const { checkDrillPreconditions } = proxyActivities<DrillActivities>({ ...SHORT_IO, taskQueue: activityQueue('notify') });
// cluster-loss: the drill cluster lost, rebuilt, unsealed and rebuilt again (restore role: it holds the harness and the unseal shares).
const { checkClusterLossReady } = proxyActivities<ClusterLossActivities>({ ...STORE_IO, taskQueue: activityQueue('restore') });
const { destroyDrillCluster, buildEmptyCluster, unsealRestoredCluster, checkRestoredCluster, rebuildDrillCluster } = proxyActivities<ClusterLossActivities>({ ...DRILL, taskQueue: activityQueue('restore') });
// Follows (and in automated mode approves) the drill's child restore; it waits as long as the recovery may take.
const { followDrillRestore } = proxyActivities<DrillActivities>({ ...POLL, heartbeatTimeout: '30s', taskQueue: activityQueue('notify') });
const { listFindingsToRetest, publishDrDrillReport, mailDrillReport } = proxyActivities<DrillActivities>({ ...STORE_IO, taskQueue: activityQueue('notify') });
// It heartbeats every 5 s: a worker killed mid-wait is noticed in 20 s, not POLL's 60 s (the fault stays in place meanwhile).
const { awaitDrillAlert } = proxyActivities<DrillActivities>({ ...POLL, heartbeatTimeout: '20s', taskQueue: activityQueue('notify') });

export interface DrDrillProgress extends WaitState {
  step: DrDrillStep | 'validating input' | 'done' | 'failed';
  completed: DrDrillStep[];
  scenario?: ScenarioId;
  mode?: 'automated' | 'assisted';
  /** Assisted mode: the step waiting for the facilitator's confirmStep. */
  awaitingConfirmation?: DrDrillStep;
  timeline: TimelineEvent[];
  rtoMs?: number;
  detectMs?: number;
  lostWrites?: number;
  /** cluster-loss: fault − the restored backup's snapshot time. */
  rpoMs?: number;
  alert?: AlertObservation;
  findings: string[];
  reportKeys?: { json: string; markdown: string; html: string };
  aborted?: { by: string; reason: string };
  error?: string;
}

export const progress = defineQuery<DrDrillProgress>('progress');
export const confirmStep = defineUpdate<{ confirmed: DrDrillStep }, [z.input<typeof ConfirmStepUpdate>]>('confirmStep');
export const abort = defineUpdate<{ aborting: true }, [z.input<typeof AbortUpdate>]>('abort');

const iso = (ms: number) => new Date(ms).toISOString();

/** The findings a drill's measurements make, with kinds stable across drills (a re-test matches by scenario + kind). */
export function findingsOf(scenario: ScenarioId, r: Pick<DrDrillReport, 'rtoMs' | 'lostWrites' | 'alert' | 'detectMs' | 'checks' | 'rpoMs'>): DrillFindingDraft[] {
  const s = SCENARIOS[scenario];
  const runbook = s.runbooks[0]!;
  const out: DrillFindingDraft[] = [];
  if (r.lostWrites !== undefined && r.lostWrites > 0) out.push({ kind: 'lost-writes', title: `${scenario}: acknowledged writes lost in the failover`, severity: 'critical', runbookSection: runbook, evidence: `${r.lostWrites} acknowledged write(s) missing` });
  if (r.rpoMs !== undefined && r.rpoMs > s.targets.rpoSeconds * 1000) out.push({ kind: 'rpo-exceeded', title: `${scenario}: the data-loss window is above the RPO target`, severity: 'high', runbookSection: runbook, evidence: `${(r.rpoMs / 3600_000).toFixed(2)} h of writes lost against ${s.targets.rpoSeconds / 3600} h` });
  if (r.rtoMs !== undefined && r.rtoMs > s.targets.rtoSeconds * 1000) out.push({ kind: 'rto-exceeded', title: `${scenario}: recovery slower than the RTO target`, severity: 'high', runbookSection: runbook, evidence: `${(r.rtoMs / 1000).toFixed(2)} s against ${s.targets.rtoSeconds} s` });
  if (r.alert && !r.alert.observed) out.push({ kind: 'not-detected', title: `${scenario}: the fault was not detected (${s.detection.alert})`, severity: 'high', runbookSection: 'docs/runbooks/monitoring.md', evidence: `no ${s.detection.alert} within the window (${r.alert.source})` });
  else if (r.alert?.observed && r.detectMs !== undefined && r.detectMs > s.detection.withinSeconds * 1000) out.push({ kind: 'slow-detection', title: `${scenario}: detection slower than its target (${s.detection.alert})`, severity: 'medium', runbookSection: 'docs/runbooks/monitoring.md', evidence: `${(r.detectMs / 1000).toFixed(1)} s against ${s.detection.withinSeconds} s` });
  // Alertmanager's receivers are named after severities (deploy/alertmanager/alertmanager.yml); ROUTES says which channels each reaches.
  const channels = (r.alert?.receivers ?? []).flatMap((name) => (name in ROUTES ? ROUTES[name as keyof typeof ROUTES] : name === 'email' ? ['email'] : []));
  if (r.alert?.observed && !channels.includes(s.detection.channel as never)) out.push({ kind: 'misrouted', title: `${scenario}: ${s.detection.alert} not routed to ${s.detection.channel}`, severity: 'medium', runbookSection: 'docs/runbooks/monitoring.md', evidence: `receivers: ${r.alert.receivers.join(', ') || 'none'}` });
  // A check the scenario's verification made (vps-compromise) that failed; its kind names the check.
  for (const c of r.checks ?? []) if (!c.ok) out.push({ kind: `check:${c.what.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 80)}`, title: `${scenario}: check failed: ${c.what}`, severity: 'high', runbookSection: runbook, evidence: c.detail });
  return out;
}

export async function drDrill(rawInput?: DrDrillInput): Promise<DrDrillResult> {
  const info = workflowInfo();
  // The drill id names the report's folder in the bucket: a plain name.
  const drillId = info.workflowId.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 200);
  const state: DrDrillProgress = { step: 'validating input', completed: [], timeline: [], findings: [] };
  setHandler(progress, () => state);
  describeRun(rawInput);
  const { step: runStep, failedAt, done, markFailed } = steps<DrDrillStep>(state);
  showStep('validating input');
  const startedAt = iso(info.runStartTime.getTime());
  const event = (kind: TimelineEvent['kind'], what: string, at = Date.now()) => state.timeline.push({ at: iso(at), kind, what });
  const confirmed = new Set<DrDrillStep>();
  let finished = false;
  let refused = false;
  let input: z.output<typeof DrDrillInput> | undefined;

  setHandler(
    confirmStep,
    (u) => {
      const c = ConfirmStepUpdate.parse(u);
      confirmed.add(c.step);
      event('confirm', `${c.by} confirmed ${c.step}`);
      return { confirmed: c.step };
    },
    {
      validator: (u) => {
        const p = ConfirmStepUpdate.safeParse(u);
        if (!p.success) throw new Error(`confirmStep: ${describeIssues(p.error.issues.slice(0, 3))}`);
        if (input?.mode !== 'assisted') throw new Error('confirmStep: this drill runs in automated mode; nothing to confirm');
        if (state.aborted) throw new Error('confirmStep: the drill is aborting');
        if (state.awaitingConfirmation !== p.data.step) throw new Error(`confirmStep: the drill is not waiting for ${p.data.step} (${state.awaitingConfirmation ? `it waits for ${state.awaitingConfirmation}` : `it is at ${state.step}`})`);
      },
    },
  );
  setHandler(
    abort,
    (u) => {
      const a = AbortUpdate.parse(u);
      state.aborted = { by: a.by, reason: a.reason };
      event('abort', `aborted by ${a.by}: ${a.reason}`);
      return { aborting: true as const };
    },
    {
      validator: (u) => {
        const p = AbortUpdate.safeParse(u);
        if (!p.success) throw new Error(`abort: ${describeIssues(p.error.issues.slice(0, 3))}`);
        if (finished) throw new Error('abort: the drill has finished');
        if (state.aborted) throw new Error(`abort: already aborted by ${state.aborted.by}`);
      },
    },
  );

  const abortedFailure = () => ApplicationFailure.create({ type: 'DrillAborted', nonRetryable: true, message: `aborted by ${state.aborted!.by}: ${state.aborted!.reason}` });
  const alertCtx = { workflow: 'drDrill', subject: `DR drill ${drillId}`, details: () => ({ scenario: state.scenario ?? '-', mode: state.mode ?? '-', step: state.step }) };

  /** One step: the facilitator's confirmation first (assisted mode), then the step, which an abort interrupts. */
  async function step<T>(name: DrDrillStep, fn: () => Promise<T>, opts: { always?: boolean } = {}): Promise<T> {
    if (opts.always) {
      event('step', name);
      return timed(name, () => runStep(name, fn));
    }
    if (state.aborted) throw abortedFailure();
    if (input?.mode === 'assisted' && CONFIRMED_STEPS.includes(name)) {
      state.awaitingConfirmation = name;
      try {
        await awaitHuman({
          what: `confirmation of ${name}`,
          instruction: `vaultdr drill confirm ${info.workflowId} ${name} --by NAME (or vaultdr drill abort ${info.workflowId} --by NAME --reason TEXT)`,
          timeoutMinutes: input.confirmTimeoutMinutes,
          remindEveryMinutes: Math.max(1, Math.min(15, Math.floor(input.confirmTimeoutMinutes / 4))),
          escalateAfter: 99,
          state,
          alert: alertCtx,
          done: () => confirmed.has(name) || !!state.aborted,
        });
      } finally {
        state.awaitingConfirmation = undefined;
      }
      if (state.aborted) throw abortedFailure();
    }
    event('step', name);
    return timed(name, () => runStep(name, async () => {
      const scope = new CancellationScope();
      const watch = condition(() => !!state.aborted || finished).then(() => {
        if (state.aborted) scope.cancel();
      });
      try {
        return await scope.run(fn);
      } catch (err) {
        if (state.aborted && isCancellation(err)) throw abortedFailure();
        throw err;
      } finally {
        void watch;
      }
    }));
  }

  /** Records how long a step ran (not the facilitator's wait before it), for the report. */
  async function timed<T>(name: DrDrillStep, fn: () => Promise<T>): Promise<T> {
    const t0 = Date.now();
    try {
      return await fn();
    } finally {
      (report.stepDurations ??= []).push({ step: name, ms: Date.now() - t0 });
    }
  }

  const report: Partial<DrDrillReport> & { timeline: TimelineEvent[]; findings: DrDrillReport['findings']; retested: RetestedFinding[] } = { timeline: state.timeline, findings: [], retested: [] };
  let faultStarted = false;
  let injected: InjectedFault | undefined;
  let reverted = false;

  /** Brings the faulted node back (always; never cancelled): the injected fault, or whatever the failover round left. */
  async function revert(): Promise<void> {
    if (!faultStarted || reverted || !input) return;
    const healTimeoutSeconds = input.healTimeoutSeconds;
    if (input.scenario === 'cluster-loss') return revertClusterLoss();
    await CancellationScope.nonCancellable(async () => {
      const t0 = Date.now();
      await step('revertFault', (): Promise<unknown> => (injected ? summarized(healFault, `bring ${injected.node} back`, { injected, healTimeoutSeconds }) : summarized(healLeftoverFault, 'heal whatever the failed round left', { target: 'vault', healTimeoutSeconds })), { always: true });
      reverted = true;
      report.revertMs = Date.now() - t0;
      event('revert', injected ? `${injected.node} back, cluster healthy` : 'leftover fault healed');
    });
  }

  /** cluster-loss: the drill cluster rebuilt to its normal state from nothing, whatever the drill left (always; never cancelled). */
  async function revertClusterLoss(): Promise<void> {
    await CancellationScope.nonCancellable(async () => {
      const t0 = Date.now();
      await step('revertFault', () => summarized(rebuildDrillCluster, 'rebuild the drill cluster to its normal state (fresh init, tokens, KV)'), { always: true });
      reverted = true;
      report.revertMs = Date.now() - t0;
      event('revert', 'drill cluster rebuilt to its normal state, healthy');
    });
  }

  /** The scenario's alert in Alertmanager after the fault (which, when, on which receiver). */
  async function awaitDetection(s: (typeof SCENARIOS)[ScenarioId], faultAt: number, detectionTimeoutSeconds: number): Promise<void> {
    const alert = await step('awaitDetection', () => summarized(awaitDrillAlert, `wait for ${s.detection.alert} in Alertmanager`, { alertname: s.detection.alert, sinceIso: iso(faultAt), untilIso: iso(faultAt + detectionTimeoutSeconds * 1000) }));
    report.alert = state.alert = alert;
    if (alert.observed && alert.startsAt) {
      report.detectMs = state.detectMs = Math.max(0, Date.parse(alert.startsAt) - faultAt);
      event('alert', `${alert.alertname} firing (${alert.receivers.join(', ') || 'no receiver'})`, Date.parse(alert.startsAt));
    }
  }

  /**
   * The cluster-loss scenario after its steady state: every node lost, detection, a new cluster,
   * the latest verified backup restored through the production path, the restored cluster checked;
   * the revert rebuilds the drill cluster whatever happened.
   */
  async function clusterLoss(s: (typeof SCENARIOS)[ScenarioId], detectionTimeoutSeconds: number): Promise<void> {
    const { recoveryTimeoutMinutes, mode, facilitator } = input!;
    try {
      faultStarted = true;
      const lost = await step('injectFault', () => summarized(destroyDrillCluster, `${s.id}: stop every node (SIGKILL) and remove its data`, { drillId }));
      report.fault = { node: lost.nodes.join(', '), injectedAt: iso(lost.at), kind: 'SIGKILL and data removal (every node)' };
      event('fault', `every node lost (${lost.nodes.join(', ')}): killed, data removed`, lost.at);
      await awaitDetection(s, lost.at, detectionTimeoutSeconds);

      const built = await step('rebuildCluster', () => summarized(buildEmptyCluster, `${s.id}: a new, empty cluster to restore into`));
      event('step', `new empty cluster on ${built.node} (fresh init)`);

      const restoreWorkflowId = `${info.workflowId}-restore`;
      const requestedBy = `drDrill ${drillId}`;
      const restored = await step('restoreLatestBackup', async () => {
        const child = await startChild<typeof restoreVault>('restoreVault', {
          workflowId: restoreWorkflowId,
          // The newest verified backup before the fault (checkSteadyState): a backup taken after the loss cannot exist in a real one.
          args: [{ backupId: report.backup?.backupId ?? 'latest', target: 'production', reason: `DR drill ${drillId} (cluster-loss)`.slice(0, 200), requestedBy, approvalTimeoutMinutes: recoveryTimeoutMinutes, remindEveryMinutes: Math.max(1, Math.min(15, recoveryTimeoutMinutes)) }],
        });
        // Automated: the drill approves as the facilitator (or as itself), never as requestedBy; assisted: a person runs `vaultdr restore approve`.
        const approveAs = mode === 'automated' ? { who: facilitator ?? 'drDrill automated', why: `DR drill ${drillId}: restore the latest verified backup into the new cluster`, expectTargetClusterId: built.clusterId } : undefined;
        const followed = await summarized(followDrillRestore, mode === 'automated' ? 'approve the restore into the new cluster, wait until it is applied' : 'wait for the facilitator to approve the restore (vaultdr restore approve)', { restoreWorkflowId, approveAs, untilIso: iso(Date.now() + recoveryTimeoutMinutes * 60_000) });
        event('confirm', `restore ${followed.backupId} approved by ${followed.approvedBy ?? '?'}, snapshot applied`, Date.parse(followed.appliedAt));
        const unsealed = await summarized(unsealRestoredCluster, "unseal the restored cluster with the backed-up cluster's shares; the other nodes join", { expectClusterId: followed.backupClusterId, timeoutSeconds: input!.healTimeoutSeconds });
        event('step', `restored cluster unsealed, ${unsealed.nodes.length} node(s) joined`);
        return { followed, record: await child.result() };
      });
      const r = restored.record;
      const verifiedAt = Date.parse(r.finishedAt);
      report.rtoMs = state.rtoMs = verifiedAt - lost.at;
      report.rpoMs = state.rpoMs = lost.at - Date.parse(r.snapshotCreatedAt);
      report.restore = { workflowId: restoreWorkflowId, backupId: r.backupId, snapshotCreatedAt: r.snapshotCreatedAt, requestedBy, ...(r.approval ? { approvedBy: r.approval.who } : {}), verifiedAt: r.finishedAt, canaryMatches: r.checks?.canary.matches, ...(r.checks?.kv ? { kvMatches: r.checks.kv.matches } : {}) };
      event('recovered', `backup ${r.backupId} restored and verified (canary read back)`, verifiedAt);
      await step('verifyRecovery', () => summarized(checkRestoredCluster, `${s.id}: every node unsealed under the restored cluster, HAProxy routes to the active one`, { expectClusterId: restored.followed.backupClusterId }));
    } finally {
      await revert();
    }
  }

  /** vault-node-failure after its steady state: the failover round (SIGKILL of the leader, writes running), detection, revert, steady state again. */
  async function nodeFailure(s: (typeof SCENARIOS)[ScenarioId], detectionTimeoutSeconds: number): Promise<void> {
    const { maxGapSeconds, healTimeoutSeconds } = input!;
    try {
      faultStarted = true;
      const outcome = await step('injectFault', () => summarized(runFailoverRound, `${s.id}: SIGKILL the leader, writes running`, { drillId, target: 'vault', fault: 'kill-leader', round: 1, maxGapSeconds, healTimeoutSeconds }));
      injected = outcome.injected;
      report.fault = { node: injected.node, injectedAt: iso(injected.at), kind: 'SIGKILL (the leader)' };
      report.rtoMs = state.rtoMs = outcome.gapMs;
      report.lostWrites = state.lostWrites = outcome.lost;
      report.writesAcked = outcome.writesAcked;
      report.writesFailed = outcome.writesFailed;
      event('fault', `SIGKILL ${injected.node} (leader)`, injected.at);
      event('recovered', `first write acknowledged after ${(outcome.gapMs / 1000).toFixed(2)} s`, injected.at + outcome.gapMs);
      await awaitDetection(s, injected.at, detectionTimeoutSeconds);
    } finally {
      await revert();
    }
    await step('verifyRecovery', () => summarized(checkClusterHealthy, `${s.id}: steady state again after the revert`, { target: 'vault', healTimeoutSeconds }));
  }

  /** Scenario-specific findings (a scenario's own checks), opened with findingsOf's. */
  const scenarioFindings: DrillFindingDraft[] = [];
  const writeReport = (toRetest: { findingId: string; title: string; kind?: string }[]): Promise<DrDrillResult> =>
    step('writeReport', async () => {
      const drafts = [...findingsOf(input!.scenario, report), ...scenarioFindings];
      report.retested = toRetest.map((f) => ({ findingId: f.findingId, title: f.title, ...(f.kind ? { kind: f.kind } : {}), passed: !drafts.some((d) => sameFinding(d, f)) }));
      let n = 0;
      for (const d of drafts) {
        const childId = `${info.workflowId}-finding-${++n}`;
        await startChild('drillFinding', { workflowId: childId, parentClosePolicy: ParentClosePolicy.ABANDON, args: [{ drillId, scenario: input!.scenario, kind: d.kind, title: d.title, severity: d.severity, runbookSection: d.runbookSection }] });
        report.findings.push({ ...d, workflowId: childId });
        state.findings.push(childId);
        event('finding', `${d.severity}: ${d.title}`);
      }
      const full = complete(report, input!, startedAt, drafts.length ? 'findings' : 'passed', drillId);
      const keys = await publishDrDrillReport({ report: full });
      state.reportKeys = keys;
      await mailDrillReport({ drillId, htmlKey: keys.html, markdownKey: keys.markdown });
      finished = true;
      done();
      return { drillId, outcome: full.outcome, reportKeys: keys, findings: state.findings, rtoMs: full.rtoMs, detectMs: full.detectMs, lostWrites: full.lostWrites, ...(full.rpoMs !== undefined ? { rpoMs: full.rpoMs } : {}) };
    });

  try {
    input = parseWorkflowInput('drDrill', DrDrillInput, rawInput);
    const s = SCENARIOS[input.scenario];
    state.scenario = input.scenario;
    state.mode = input.mode;
    const { healTimeoutSeconds } = input;
    const detectionTimeoutSeconds = input.detectionTimeoutSeconds ?? s.detection.withinSeconds + 60;

    let toRetest: { findingId: string; title: string; kind?: string }[] = [];
    // Scenarios other than vault-node-failure run in their own file with this drill's step(), timeline and report.
    const ctx: DrillContext = {
      input,
      drillId,
      workflowId: info.workflowId,
      runId: info.runId,
      step,
      event,
      report,
      measured: (m) => Object.assign(state, m),
      faultStarting: () => void (faultStarted = true),
    };
    let vpsScopes: { mailbox: string; sshUser: string } | undefined;
    try {
      await step('checkDrillPreconditions', async () => {
        await checkDrillPreconditions({ drillId: info.workflowId, scenario: input!.scenario, taskQueue: info.taskQueue });
        toRetest = await listFindingsToRetest({ scenario: input!.scenario });
      });
      // Each scenario with a runner of its own (workflows/drills/<scenario>.ts) checks its own steady state.
      if (input.scenario === 'vps-compromise') vpsScopes = await vpsSteadyState(ctx);
      else if (input.scenario !== 'credential-compromise') await step('checkSteadyState', async () => {
        await summarized(checkClusterHealthy, `${s.id}: does the steady state hold?`, { target: 'vault', healTimeoutSeconds });
        if (input!.scenario === 'cluster-loss') {
          // The backup the drill will restore: the newest verified one before the fault.
          const ready = await summarized(checkClusterLossReady, `${s.id}: a verified backup to restore, a drill cluster to lose`);
          report.backup = ready.backup;
          event('step', `newest verified backup ${ready.backup.backupId}, ${(ready.backup.ageSeconds / 3600).toFixed(1)} h old`);
        } else if (patched('drill-steady-state-backup')) {
          // Drills started before this probe existed replay without it.
          await checkNewestVerifiedBackup(26);
        }
      }).catch((err: unknown) => {
        const f = describeFailure(err);
        if (f?.errorType === 'HaDrillRefused') throw ApplicationFailure.create({ type: 'DrillSteadyStateNotHolding', nonRetryable: true, message: `steady state does not hold, nothing injected: ${f.message}` });
        throw err;
      });
    } catch (err) {
      refused = true;
      throw err;
    }

    if (input.scenario === 'credential-compromise') {
      await runCredentialCompromise({
        input,
        workflowId: info.workflowId,
        step,
        event,
        report,
        state,
        refused: () => (refused = true),
        faultStarted: () => (faultStarted = true),
        findings: scenarioFindings,
      });
      return await writeReport(toRetest);
    }

    if (vpsScopes) await vpsCompromise(ctx, vpsScopes);
    else if (input.scenario === 'cluster-loss') await clusterLoss(s, detectionTimeoutSeconds);
    else await nodeFailure(s, detectionTimeoutSeconds);

    return await writeReport(toRetest);
  } catch (err) {
    finished = true;
    const failedStep = failedAt() ?? state.step;
    if (refused) markFailed(failedStep as DrDrillStep);
    return failRunbook(err, {
      failedStep,
      state,
      alert: alertCtx,
      // A refusal harmed nothing and an abort is a decision: warn. A drill that failed after its fault pages.
      severity: (f) => (refused || f.errorType === 'InvalidInput' || f.errorType === 'DrillAborted' ? 'warning' : 'critical'),
      // A drill that got as far as its fault leaves a report of what it measured (outcome aborted/failed).
      record: faultStarted && input ? (f) => publishDrDrillReport({ report: { ...complete(report, input!, startedAt, f.errorType === 'DrillAborted' ? 'aborted' : 'failed', drillId), error: `${failedStep}: ${f.message}` } }) : undefined,
      failureMessage: (f) => `DR drill ${drillId} ${refused ? 'refused' : 'failed'} at ${failedStep}: ${f.message}`,
    });
  }
}

function complete(r: Partial<DrDrillReport> & Pick<DrDrillReport, 'timeline' | 'findings' | 'retested'>, input: z.output<typeof DrDrillInput>, startedAt: string, outcome: DrDrillReport['outcome'], drillId: string): DrDrillReport {
  const s = SCENARIOS[input.scenario];
  return {
    ...r,
    drillId,
    scenario: input.scenario,
    mode: input.mode,
    ...(input.reason ? { reason: input.reason } : {}),
    ...(input.facilitator ? { facilitator: input.facilitator } : {}),
    startedAt,
    finishedAt: iso(Date.now()),
    outcome,
    targets: { rtoSeconds: s.targets.rtoSeconds, rpoSeconds: s.targets.rpoSeconds, detectSeconds: s.detection.withinSeconds, alert: s.detection.alert, channel: s.detection.channel },
    runbooks: s.runbooks,
    timeline: [...r.timeline].sort((a, b) => Date.parse(a.at) - Date.parse(b.at)),
  };
}
