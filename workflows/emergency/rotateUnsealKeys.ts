// rotateUnsealKeys — the unseal-key rotation ceremony. Reads like docs/runbooks/unseal-key-rotation.md:
//   initRootKeyRotation → awaitCurrentShares (custodians: vaultdr keys rotate-submit, straight to OpenBao)
//   → distributeEncryptedShares → awaitVerification (custodians: vaultdr keys rotate-verify)
//   → startKeyProofCopy → openUnsealIntake → awaitNewShares (vaultdr keys submit-share --pgp-key)
//   → proveCopyServes → closeUnsealIntake, teardownKeyProofCopy (always)
//   → recordKeyGeneration → backupAfterRotation (child backupVault)
// No share passes through Temporal: custodians talk to OpenBao and to the worker's share intake.
import { ApplicationFailure, CancellationScope, defineQuery, executeChild, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { UnsealRotationActivities } from '../../activities/emergency/unsealRotation';
import type { SealDrillActivities } from '../../activities/emergency/sealDrill';
import type { BackupResult } from '../../common/backup';
import { UnsealReady } from '../../common/rotation';
import { UnsealRotationInput, type UnsealRotationResult } from '../../common/unsealKeys';
import { parseWorkflowInput } from '../../common/validate';
import { STAGING } from '../profiles';
import { activityQueue } from '../queues';
import { POLL, awaitHuman, failRunbook, onCustodianSharesReady, pollUntil, showStep, steps, type AlertContext, describeRun } from '../helpers';

const { distributeEncryptedShares, initRootKeyRotation, proveCopyServes, recordKeyGeneration, startKeyProofCopy } = proxyActivities<UnsealRotationActivities>({ ...STAGING, taskQueue: activityQueue('restore') });
const { pollRotationPhase } = proxyActivities<UnsealRotationActivities>({ ...POLL, taskQueue: activityQueue('restore') });
const { closeUnsealIntake, openUnsealIntake, teardownDrillVault } = proxyActivities<SealDrillActivities>({ ...STAGING, taskQueue: activityQueue('restore') });

export type UnsealRotationStep =
  | 'initRootKeyRotation'
  | 'awaitCurrentShares'
  | 'distributeEncryptedShares'
  | 'awaitVerification'
  | 'startKeyProofCopy'
  | 'openUnsealIntake'
  | 'awaitNewShares'
  | 'proveCopyServes'
  | 'closeUnsealIntake'
  | 'teardownKeyProofCopy'
  | 'recordKeyGeneration'
  | 'backupAfterRotation';

export interface UnsealRotationProgress {
  step: UnsealRotationStep | 'validating input' | 'done' | 'failed';
  completed: UnsealRotationStep[];
  address?: string;
  clusterId?: string;
  /** The ceremony's nonce (custodians' CLI finds it by itself; shown for the record). */
  nonce?: string;
  custodians?: { name: string; fingerprint: string }[];
  /** Object keys of the PGP-encrypted new shares to hand to each custodian. */
  distribution?: string[];
  copyAddress?: string;
  shares?: { received: number; threshold: number };
  phasesMs: Record<string, number>;
  waitingFor?: string;
  error?: string;
}
export const progress = defineQuery<UnsealRotationProgress>('progress');
export { custodianSharesReady } from '../helpers';

export async function rotateUnsealKeys(rawInput?: UnsealRotationInput): Promise<UnsealRotationResult> {
  const info = workflowInfo();
  const copyId = `keyproof-${info.workflowId.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 80)}`;
  const state: UnsealRotationProgress = { step: 'validating input', completed: [], phasesMs: {} };
  setHandler(progress, () => state);
  describeRun(rawInput);
  onCustodianSharesReady(UnsealReady, (s) => (state.shares = { received: s.received, threshold: s.threshold }));
  const { step, failedAt, done } = steps<UnsealRotationStep>(state);
  showStep('validating input');
  let input: ReturnType<typeof UnsealRotationInput.parse> = { threshold: 2, timeoutMinutes: 1, remindEveryMinutes: 1, backupAfter: false, training: false };
  const alert: AlertContext = { workflow: 'rotateUnsealKeys', subject: `Unseal-key rotation on ${state.address ?? 'the cluster'}`, details: () => ({ cluster: state.clusterId ?? '(unknown)', nonce: state.nonce ?? '(not started)' }) };
  const wait = () => ({ timeoutMinutes: input.timeoutMinutes, remindEveryMinutes: input.remindEveryMinutes, state, alert });
  const timed = async <T>(name: string, run: () => Promise<T>): Promise<T> => {
    const t0 = Date.now();
    try {
      return await run();
    } finally {
      state.phasesMs[name] = Date.now() - t0;
    }
  };
  const t0 = Date.now();
  try {
    input = parseWorkflowInput('rotateUnsealKeys', UnsealRotationInput, rawInput);
    const started = await timed('init', () => step('initRootKeyRotation', () => initRootKeyRotation({ shares: input.shares, threshold: input.threshold })));
    Object.assign(state, { address: started.address, clusterId: started.clusterId, nonce: started.nonce, custodians: started.custodians });
    const nonce = started.nonce;
    await timed('currentShares', () =>
      step('awaitCurrentShares', () =>
        pollUntil({
          ...wait(),
          what: 'current shares',
          instruction: `${started.required} custodians each run: vaultdr keys rotate-submit CURRENT_SHARE_FILE --token-file THEIR_TOKEN (straight to ${started.address}, never through Temporal)`,
          poll: ({ untilIso }) => pollRotationPhase({ nonce, phase: 'old-shares', untilIso }),
        }),
      ),
    );
    const dist = await timed('distribute', () => step('distributeEncryptedShares', () => distributeEncryptedShares({ nonce, clusterId: started.clusterId, custodians: started.custodians })));
    state.distribution = dist.objects;
    await timed('verification', () =>
      step('awaitVerification', () =>
        pollUntil({
          ...wait(),
          what: 'new shares verified',
          instruction: `give each custodian their encrypted share (${dist.objects.length} objects under ${dist.objects[0]?.replace(/[^/]+$/, '') ?? ''}); ${input.threshold} of them run: vaultdr keys rotate-verify SHARE.asc --pgp-key PRIVATE_KEY --token-file THEIR_TOKEN`,
          poll: ({ untilIso }) => pollRotationPhase({ nonce, phase: 'verification', untilIso }),
        }),
      ),
    );
    let copyStarted = false;
    let intakeOpen = false;
    try {
      copyStarted = true;
      const copy = await timed('copy', () => step('startKeyProofCopy', () => startKeyProofCopy({ stagingId: copyId })));
      state.copyAddress = copy.address;
      if (!copy.sealed) throw ApplicationFailure.create({ type: 'UnsealRotationFailed', message: 'the throwaway copy came up unsealed: it proves nothing about the new shares', nonRetryable: true });
      intakeOpen = true;
      await step('openUnsealIntake', () => openUnsealIntake({ address: copy.address, stagingId: copyId }));
      await timed('newShares', () =>
        step('awaitNewShares', () =>
          awaitHuman({
            ...wait(),
            what: 'custodian shares',
            instruction: `${input.threshold} custodians each run: vaultdr keys submit-share ${info.workflowId} SHARE.asc --pgp-key PRIVATE_KEY (the NEW share; it unseals a throwaway copy)`,
            done: () => state.shares !== undefined,
          }),
        ),
      );
      const served = await step('proveCopyServes', () => proveCopyServes({ address: copy.address, expectClusterId: started.clusterId }));
      if (!served.ok) throw ApplicationFailure.create({ type: 'UnsealRotationFailed', message: served.detail, nonRetryable: true });
    } finally {
      await CancellationScope.nonCancellable(async () => {
        if (intakeOpen) await step('closeUnsealIntake', () => closeUnsealIntake()).catch(() => undefined);
        if (copyStarted) await step('teardownKeyProofCopy', () => teardownDrillVault({ stagingId: copyId })).catch(() => undefined);
      });
    }
    const rec = await step('recordKeyGeneration', () =>
      recordKeyGeneration({ nonce, clusterId: started.clusterId, shares: started.shares, threshold: started.threshold, custodians: started.custodians, distribution: dist.objects }),
    );
    let backupId: string | undefined;
    if (input.backupAfter) {
      const b = await timed('backup', () =>
        step('backupAfterRotation', () => executeChild('backupVault', { args: [{ trigger: 'manual', prune: false }], taskQueue: info.taskQueue }) as Promise<BackupResult>),
      );
      backupId = b.backupId;
    }
    state.phasesMs.total = Date.now() - t0;
    done();
    return {
      clusterId: started.clusterId,
      generation: rec.generation,
      previousGeneration: rec.previousGeneration,
      shares: started.shares,
      threshold: started.threshold,
      custodians: started.custodians,
      distribution: dist.objects,
      provenOnCopy: true,
      ...(backupId ? { backupId } : {}),
      phasesMs: state.phasesMs,
      detail: `generation ${rec.generation} in force (${started.threshold} of ${started.shares}); generation ${rec.previousGeneration}'s shares stay escrowed while ${rec.backupsStillNeedingPrevious} backup(s) need them${rec.newestBackupNeedingPrevious ? ` (newest ${rec.newestBackupNeedingPrevious})` : ''}`,
    };
  } catch (err) {
    const failedStep = failedAt() ?? state.step;
    return failRunbook(err, {
      failedStep,
      state,
      alert,
      failureMessage: (f) => `unseal-key rotation failed at ${failedStep}: ${f.message}${state.completed.includes('awaitVerification') ? '' : ' (the old shares are still the valid ones)'}`,
    });
  }
}
