// sealUnsealDrill — the emergency seal and the quorum unseal, rehearsed on a throwaway OpenBao
// (target "throwaway", the default) or on the HA cluster (target "ha"). Reads like
// docs/runbooks/unseal-key-rotation.md "Seal/unseal drill":
//   throwaway: startDrillVault → openUnsealIntake → sealVault → proveRefuses → awaitDrillShares
//     → proveServes → closeUnsealIntake, teardownDrillVault (always)
//   ha: checkClusterHealthy → stopStandbys → openUnsealIntake → sealActiveNode → proveHaRefuses
//     → awaitDrillShares → restoreStandbys (quorum) → proveHaServes → restoreStandbys (all)
//     → checkClusterHealthy → closeUnsealIntake; restoreStandbys (all) + checkClusterHealthy
//     always, non-cancellable, alerting if the cluster stays degraded
// Custodians hand their shares to the restore worker's share intake (`vaultdr keys submit-share`),
// which forwards each to sys/unseal: no share enters history, only counts. Each phase is timed.
import { ApplicationFailure, CancellationScope, defineQuery, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { SealDrillActivities } from '../../activities/emergency/sealDrill';
import type { HaSealDrillActivities } from '../../activities/emergency/haSealDrill';
import type { HaActivities } from '../../activities/ha/failover';
import { SealDrillInput, UnsealReady, type SealDrillResult } from '../../common/rotation';
import { parseWorkflowInput } from '../../common/validate';
import type { NotifyActivities } from '../../activities/notify/notify';
import { ALERT, DRILL, STAGING } from '../profiles';
import { activityQueue } from '../queues';
import { awaitHuman, failRunbook, onCustodianSharesReady, showStep, steps, type AlertContext, describeRun } from '../helpers';

const { closeUnsealIntake, openUnsealIntake, proveRefuses, proveServes, sealVault, startDrillVault, teardownDrillVault } = proxyActivities<SealDrillActivities>({ ...STAGING, taskQueue: activityQueue('restore') });
// Target "ha": the HA cluster's node control and drill token are the restore role's (ha.harnessDir), as for failoverDrill.
const { proveHaRefuses, proveHaServes, restoreStandbys, sealActiveNode, stopStandbys } = proxyActivities<HaSealDrillActivities>({ ...DRILL, taskQueue: activityQueue('restore') });
const { checkClusterHealthy } = proxyActivities<HaActivities>({ ...DRILL, taskQueue: activityQueue('restore') });
const { sendAlert } = proxyActivities<NotifyActivities>({ ...ALERT, taskQueue: activityQueue('notify') });

export type SealDrillStep =
  | 'startDrillVault'
  | 'sealVault'
  | 'proveRefuses'
  | 'openUnsealIntake'
  | 'awaitDrillShares'
  | 'proveServes'
  | 'closeUnsealIntake'
  | 'teardownDrillVault'
  | 'checkClusterHealthy'
  | 'stopStandbys'
  | 'sealActiveNode'
  | 'proveHaRefuses'
  | 'restoreStandbys'
  | 'proveHaServes';

/** Target ha: how long HAProxy may take to stop routing to the sealed node, and to route to the new active one. */
const HA_ROUTING_SECONDS = 30;

export interface SealDrillProgress {
  drillId: string;
  step: SealDrillStep | 'validating input' | 'done' | 'failed';
  completed: SealDrillStep[];
  address?: string;
  /** Where the drill's custodian share files are (paths on the restore host, never the shares). */
  shareFiles?: string[];
  shares?: { received: number; threshold: number };
  phasesMs: Partial<SealDrillResult['phasesMs']>;
  /** Target ha: the node sealed and the standbys stopped. */
  ha?: { sealedNode: string; standbys: string[]; standbysStopped: boolean; restored: boolean };
  /** Target ha: set when the cleanup could not bring the cluster back to full health (alerted as critical). */
  clusterLeftDegraded?: string;
  waitingFor?: string;
  error?: string;
}
export const progress = defineQuery<SealDrillProgress>('progress');
/** Sent by the worker's share intake once the drill server is unsealed (counts only). */
export { custodianSharesReady } from '../helpers';

export async function sealUnsealDrill(rawInput?: SealDrillInput): Promise<SealDrillResult> {
  const info = workflowInfo();
  const drillId = `drill-${info.workflowId.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 80)}`;
  const state: SealDrillProgress = { drillId, step: 'validating input', completed: [], phasesMs: {} };
  setHandler(progress, () => state);
  describeRun(rawInput);
  onCustodianSharesReady(UnsealReady, (s) => (state.shares = { received: s.received, threshold: s.threshold }));
  const { step, failedAt, done } = steps<SealDrillStep>(state);
  showStep('validating input');
  let input: ReturnType<typeof SealDrillInput.parse> = { target: 'throwaway', shares: 3, threshold: 2, unsealTimeoutMinutes: 1, remindEveryMinutes: 1, training: false, healTimeoutSeconds: 180 };
  const alert: AlertContext = {
    workflow: 'sealUnsealDrill',
    subject: `Seal/unseal drill ${drillId}`,
    details: () => ({ drill: drillId, server: state.address ?? '(not started)', ...(state.clusterLeftDegraded ? { 'HA cluster left degraded': state.clusterLeftDegraded } : {}) }),
  };
  // Both targets wait for the custodians alike; `instruction` says which server their shares unseal.
  const awaitShares = (instruction: string) =>
    step('awaitDrillShares', () =>
      awaitHuman({
        what: 'custodian shares',
        instruction,
        done: () => state.shares !== undefined,
        timeoutMinutes: input.unsealTimeoutMinutes,
        remindEveryMinutes: input.remindEveryMinutes,
        escalateAfter: 99, // a drill never pages
        state,
        alert,
      }),
    );
  const t0 = Date.now();
  let started = false;
  let intakeOpen = false;
  let result!: SealDrillResult;
  try {
    input = parseWorkflowInput('sealUnsealDrill', SealDrillInput, rawInput);
    if (input.target === 'ha') result = await haDrill(input, state, step, awaitShares, alert, t0);
    else try {
      started = true;
      const server = await step('startDrillVault', () => startDrillVault({ stagingId: drillId, shares: input.shares, threshold: input.threshold }));
      const target = { address: server.address, stagingId: server.stagingId };
      state.address = server.address;
      state.shareFiles = server.shareFiles;
      // The intake is open before the seal, so no custodian's share can arrive to a closed door.
      intakeOpen = true;
      await step('openUnsealIntake', () => openUnsealIntake(target));
      const sealStart = Date.now();
      await step('sealVault', () => sealVault(target));
      const sealDone = Date.now();
      state.phasesMs.seal = sealDone - sealStart;
      const refused = await step('proveRefuses', () => proveRefuses(target));
      state.phasesMs.proveRefuses = Date.now() - sealDone;
      if (!refused.refused) throw ApplicationFailure.create({ type: 'VerificationFailed', message: `the sealed server still answers: ${refused.detail}`, nonRetryable: true });
      await awaitShares(`${input.threshold} of ${input.shares} custodians each run: vaultdr keys submit-share ${info.workflowId} SHARE_FILE (drill share files: ${server.shareFiles.length ? server.shareFiles[0]!.replace(/share-1\.txt$/, 'share-<n>.txt') : 'none'})`);
      const unsealed = Date.now();
      state.phasesMs.unseal = unsealed - sealDone;
      const serves = await step('proveServes', () => proveServes(target));
      state.phasesMs.serveAgain = Date.now() - unsealed;
      if (!serves.serves) throw ApplicationFailure.create({ type: 'VerificationFailed', message: `after the unseal: ${serves.detail}`, nonRetryable: true });
      state.phasesMs.total = Date.now() - t0;
      result = {
        drillId,
        target: 'throwaway',
        address: server.address,
        sealed: true,
        refusedWhileSealed: true,
        servesAgain: true,
        sharesUsed: state.shares!.received,
        threshold: state.shares!.threshold,
        phasesMs: state.phasesMs as SealDrillResult['phasesMs'],
        detail: `${refused.detail}; unsealed with ${state.shares!.received} custodian share(s) through the intake; ${serves.detail}`,
      };
    } finally {
      await CancellationScope.nonCancellable(async () => {
        if (intakeOpen) await closeUnsealIntake().catch(() => undefined);
        if (started) await step('teardownDrillVault', () => teardownDrillVault({ stagingId: drillId })).catch(() => undefined);
      });
    }
    done();
    return result;
  } catch (err) {
    const failedStep = failedAt() ?? state.step;
    return failRunbook(err, {
      failedStep,
      state,
      alert,
      // A failed drill is a finding, not an outage; an HA cluster the drill could not bring back is.
      severity: () => (state.clusterLeftDegraded ? 'critical' : 'warning'),
      failureMessage: (f) => `seal/unseal drill ${drillId} failed at ${failedStep}: ${f.message}${state.clusterLeftDegraded && !f.message.includes(state.clusterLeftDegraded) ? `; THE HA CLUSTER IS LEFT DEGRADED: ${state.clusterLeftDegraded}` : ''}`,
    });
  }
}

type DrillStep = ReturnType<typeof steps<SealDrillStep>>['step'];

/**
 * Target ha: the standbys stopped (a standby would take over a sealed active node), the active node
 * sealed, refusal proved through HAProxy, the custodians' shares through the intake, one standby
 * back for raft quorum, serving proved through HAProxy, the rest back and the cluster fully
 * healthy. Whatever happens after the standbys stop, a non-cancellable cleanup brings every node
 * back and checks the cluster; if it cannot, the run fails and alerts as critical.
 */
async function haDrill(
  input: ReturnType<typeof SealDrillInput.parse>,
  state: SealDrillProgress,
  step: DrillStep,
  awaitShares: (instruction: string) => Promise<void>,
  alert: AlertContext,
  t0: number,
): Promise<SealDrillResult> {
  const { drillId } = state;
  const info = workflowInfo();
  let intakeOpen = false;
  let stopping = false;
  let result!: SealDrillResult;
  try {
    await step('checkClusterHealthy', () => checkClusterHealthy({ target: 'vault', healTimeoutSeconds: input.healTimeoutSeconds }));
    const stopStart = Date.now();
    // From here on the cleanup brings the nodes back, even if the stop itself fails half-way.
    stopping = true;
    const target = await step('stopStandbys', () => stopStandbys({ drillId }));
    state.ha = { sealedNode: target.node, standbys: target.standbys, standbysStopped: true, restored: false };
    state.address = target.address;
    state.phasesMs.stopStandbys = Date.now() - stopStart;
    // The intake is open before the seal, so no custodian's share can arrive to a closed door.
    intakeOpen = true;
    await step('openUnsealIntake', () => openUnsealIntake({ address: target.address, stagingId: target.stagingId }));
    const sealStart = Date.now();
    await step('sealActiveNode', () => sealActiveNode({ drillId }));
    const sealDone = Date.now();
    state.phasesMs.seal = sealDone - sealStart;
    const refused = await step('proveHaRefuses', () => proveHaRefuses({ drillId, timeoutSeconds: HA_ROUTING_SECONDS }));
    state.phasesMs.proveRefuses = Date.now() - sealDone;
    if (!refused.refused) throw ApplicationFailure.create({ type: 'VerificationFailed', message: `the sealed cluster still answers: ${refused.detail}`, nonRetryable: true });
    await awaitShares(`the HA cluster's unseal custodians (its threshold) each run: vaultdr keys submit-share ${info.workflowId} SHARE_FILE (the shares unseal ${target.node}, ${target.address})`);
    const unsealed = Date.now();
    state.phasesMs.unseal = unsealed - sealDone;
    const quorum = await step('restoreStandbys', () => restoreStandbys({ drillId, scope: 'quorum', timeoutSeconds: input.healTimeoutSeconds }));
    const quorumDone = Date.now();
    state.phasesMs.quorum = quorumDone - unsealed;
    const serves = await step('proveHaServes', () => proveHaServes({ drillId, timeoutSeconds: HA_ROUTING_SECONDS }));
    const servesDone = Date.now();
    state.phasesMs.serveAgain = servesDone - quorumDone;
    if (!serves.serves) throw ApplicationFailure.create({ type: 'VerificationFailed', message: `after the unseal: ${serves.detail}`, nonRetryable: true });
    const all = await step('restoreStandbys', () => restoreStandbys({ drillId, scope: 'all', timeoutSeconds: input.healTimeoutSeconds }));
    const healthy = await step('checkClusterHealthy', () => checkClusterHealthy({ target: 'vault', healTimeoutSeconds: input.healTimeoutSeconds }));
    state.ha.restored = true;
    state.phasesMs.restoreStandbys = Date.now() - servesDone;
    state.phasesMs.total = Date.now() - t0;
    result = {
      drillId,
      target: 'ha',
      address: target.address,
      ha: { sealedNode: target.node, standbys: target.standbys, leaderAfter: healthy.leader },
      sealed: true,
      refusedWhileSealed: true,
      servesAgain: true,
      sharesUsed: state.shares!.received,
      threshold: state.shares!.threshold,
      phasesMs: state.phasesMs as SealDrillResult['phasesMs'],
      detail: `standbys ${target.standbys.join(', ')} stopped, ${target.node} sealed; ${refused.detail}; unsealed with ${state.shares!.received} custodian share(s) through the intake; ${quorum.detail}; ${serves.detail}; ${all.detail}`,
    };
  } finally {
    await CancellationScope.nonCancellable(async () => {
      if (intakeOpen) await closeUnsealIntake().catch(() => undefined);
      if (stopping && !state.ha?.restored) {
        try {
          await step('restoreStandbys', () => restoreStandbys({ drillId, scope: 'all', timeoutSeconds: input.healTimeoutSeconds }));
          await step('checkClusterHealthy', () => checkClusterHealthy({ target: 'vault', healTimeoutSeconds: input.healTimeoutSeconds }));
          if (state.ha) state.ha.restored = true;
        } catch (err) {
          // An activity's own reason, not the ActivityFailure wrapper's "Activity task failed".
          state.clusterLeftDegraded = ((err as Error).cause as Error | undefined)?.message ?? (err as Error).message;
          // Critical whatever became of the drill (a cancelled run's own alert is only a warning).
          await sendAlert({
            severity: 'critical',
            dedupKey: 'sealUnsealDrill/clusterLeftDegraded',
            summary: `Seal/unseal drill ${drillId} left the HA cluster degraded`,
            workflowId: info.workflowId,
            runId: info.runId,
            failedStep: 'restoreStandbys',
            errorType: 'HaNodeDidNotRejoin',
            error: state.clusterLeftDegraded,
            details: { drill: drillId, 'sealed node': state.ha?.sealedNode ?? '?', runbook: 'docs/runbooks/unseal-key-rotation.md#restorestandbys' },
          }).catch(() => undefined);
        }
      }
    });
  }
  // The drill passed but the cleanup could not restore the cluster: fail (and alert as critical).
  if (state.clusterLeftDegraded) throw ApplicationFailure.create({ type: 'HaNodeDidNotRejoin', message: `the HA cluster is left degraded: ${state.clusterLeftDegraded}`, nonRetryable: true });
  return result;
}
