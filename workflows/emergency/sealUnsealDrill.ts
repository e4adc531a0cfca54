// sealUnsealDrill — the emergency seal and the quorum unseal, rehearsed on a throwaway OpenBao.
// Reads like docs/runbooks/unseal-key-rotation.md "Seal/unseal drill":
//   startDrillVault → sealVault → proveRefuses → openUnsealIntake → awaitDrillShares
//   → proveServes → closeUnsealIntake, teardownDrillVault (always)
// Custodians hand their shares to the restore worker's share intake (`vaultdr keys submit-share`),
// which forwards each to sys/unseal: no share enters history, only counts. Each phase is timed.
import { ApplicationFailure, CancellationScope, defineQuery, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { SealDrillActivities } from '../../activities/emergency/sealDrill';
import { SealDrillInput, UnsealReady, type SealDrillResult } from '../../common/rotation';
import { parseWorkflowInput } from '../../common/validate';
import { STAGING } from '../profiles';
import { activityQueue } from '../queues';
import { awaitHuman, failRunbook, onCustodianSharesReady, showStep, steps, type AlertContext, describeRun } from '../helpers';

const { closeUnsealIntake, openUnsealIntake, proveRefuses, proveServes, sealVault, startDrillVault, teardownDrillVault } = proxyActivities<SealDrillActivities>({ ...STAGING, taskQueue: activityQueue('restore') });

export type SealDrillStep = 'startDrillVault' | 'sealVault' | 'proveRefuses' | 'openUnsealIntake' | 'awaitDrillShares' | 'proveServes' | 'closeUnsealIntake' | 'teardownDrillVault';

export interface SealDrillProgress {
  drillId: string;
  step: SealDrillStep | 'validating input' | 'done' | 'failed';
  completed: SealDrillStep[];
  address?: string;
  /** Where the drill's custodian share files are (paths on the restore host, never the shares). */
  shareFiles?: string[];
  shares?: { received: number; threshold: number };
  phasesMs: Partial<SealDrillResult['phasesMs']>;
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
  let input: ReturnType<typeof SealDrillInput.parse> = { shares: 3, threshold: 2, unsealTimeoutMinutes: 1, remindEveryMinutes: 1, training: false };
  const alert: AlertContext = { workflow: 'sealUnsealDrill', subject: `Seal/unseal drill ${drillId}`, details: () => ({ drill: drillId, server: state.address ?? '(not started)' }) };
  const t0 = Date.now();
  let started = false;
  let intakeOpen = false;
  let result!: SealDrillResult;
  try {
    input = parseWorkflowInput('sealUnsealDrill', SealDrillInput, rawInput);
    try {
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
      await step('awaitDrillShares', () =>
        awaitHuman({
          what: 'custodian shares',
          instruction: `${input.threshold} of ${input.shares} custodians each run: vaultdr keys submit-share ${info.workflowId} SHARE_FILE (drill share files: ${server.shareFiles.length ? server.shareFiles[0]!.replace(/share-1\.txt$/, 'share-<n>.txt') : 'none'})`,
          done: () => state.shares !== undefined,
          timeoutMinutes: input.unsealTimeoutMinutes,
          remindEveryMinutes: input.remindEveryMinutes,
          escalateAfter: 99, // a drill never pages
          state,
          alert,
        }),
      );
      const unsealed = Date.now();
      state.phasesMs.unseal = unsealed - sealDone;
      const serves = await step('proveServes', () => proveServes(target));
      state.phasesMs.serveAgain = Date.now() - unsealed;
      if (!serves.serves) throw ApplicationFailure.create({ type: 'VerificationFailed', message: `after the unseal: ${serves.detail}`, nonRetryable: true });
      state.phasesMs.total = Date.now() - t0;
      result = {
        drillId,
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
      severity: () => 'warning', // a failed drill is a finding, not an outage
      failureMessage: (f) => `seal/unseal drill ${drillId} failed at ${failedStep}: ${f.message}`,
    });
  }
}
