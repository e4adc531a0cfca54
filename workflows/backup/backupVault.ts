// backupVault — the daily encrypted backup. Reads like docs/runbooks/backup.md:
// checkBackupBucket → writeCanary → snapshotToStore → verifyUploadedBackup → pruneBackups.
// Any failure sends an alert naming the failed step (failRunbook), and retention never runs after a
// failure. A cancelled run alerts too, and ends Cancelled.
import { defineQuery, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { BackupActivities } from '../../activities/backup/backup';
import { BackupInput, backupIdFor, type BackupResult } from '../../common/backup';
import { parseWorkflowInput } from '../../common/validate';
import { STORE_IO, TRANSFER } from '../profiles';
import { BACKUP_ID } from '../../common/searchAttributes';
import { failRunbook, showAttribute, showStep, steps, summarized, describeRun } from '../helpers';
import { activityQueue } from '../queues';

// Each activity bound to its profile here, once: STORE_IO ones heartbeat (BACKUP_STORE_IO), TRANSFER ones move the snapshot.
const { checkBackupBucket, writeCanary, pruneBackups } = proxyActivities<BackupActivities>({ ...STORE_IO, taskQueue: activityQueue('backup') });
const { snapshotToStore, verifyUploadedBackup } = proxyActivities<BackupActivities>({ ...TRANSFER, taskQueue: activityQueue('backup') });

export type BackupStep = 'validating input' | 'checkBackupBucket' | 'writeCanary' | 'snapshotToStore' | 'verifyUploadedBackup' | 'pruneBackups' | 'done' | 'failed';

export interface BackupProgress {
  backupId: string;
  step: BackupStep;
  completed: BackupStep[];
  objectKey?: string;
  objectBytes?: number;
  error?: string;
}
export const progress = defineQuery<BackupProgress>('progress');

export async function backupVault(rawInput?: BackupInput): Promise<BackupResult> {
  describeRun(rawInput);
  const info = workflowInfo();
  const backupId = backupIdFor(new Date(info.runStartTime).toISOString(), info.workflowId, info.runId);
  const state: BackupProgress = { backupId, step: 'validating input', completed: [] };
  setHandler(progress, () => state);
  let input: ReturnType<typeof BackupInput.parse> | undefined;

  const { step, failedAt, done } = steps<BackupStep>(state);
  showAttribute(BACKUP_ID, backupId);
  showStep('validating input');

  try {
    input = parseWorkflowInput('backupVault', BackupInput, rawInput);
    const { trigger, prune, retention } = input;
    await step('checkBackupBucket', () => checkBackupBucket());
    const canary = await step('writeCanary', () => writeCanary({ backupId }));
    const uploaded = await step('snapshotToStore', () =>
      summarized(snapshotToStore, `Snapshot OpenBao to backup ${backupId}`, {
        backupId,
        workflowId: info.workflowId,
        runId: info.runId,
        trigger,
        createdAt: new Date(info.runStartTime).toISOString(),
        canary: { path: canary.path, marker: canary.marker },
      }),
    );
    state.objectKey = uploaded.objectKey;
    state.objectBytes = uploaded.objectBytes;
    await step('verifyUploadedBackup', () => summarized(verifyUploadedBackup, `Verify uploaded backup ${backupId}`, { backupId }));
    const pruned = prune ? await step('pruneBackups', () => pruneBackups({ retention, justVerified: backupId })) : undefined;
    done();
    return {
      backupId,
      status: 'verified',
      objectKey: uploaded.objectKey,
      manifestKey: uploaded.manifestKey,
      plaintextBytes: uploaded.plaintextBytes,
      objectBytes: uploaded.objectBytes,
      objectSha256: uploaded.objectSha256,
      raftIndex: uploaded.raftIndex,
      // --no-prune: say retention was skipped, not "0 kept".
      retention: pruned ? 'applied' : 'skipped',
      pruned: pruned?.deleted ?? [],
      keptCount: pruned?.kept ?? 0,
      unverifiedKept: pruned?.unverified ?? [],
      verifyCommand: `vaultdr backup verify ${backupId}`,
    };
  } catch (err) {
    const failedStep = failedAt() ?? state.step;
    return failRunbook(err, {
      failedStep,
      state,
      alert: { workflow: 'backupVault', subject: `Vault backup ${backupId}`, details: () => ({ backup: backupId, trigger: input?.trigger ?? '(input rejected)', 'no retention ran': 'true' }) },
      failureMessage: (f) => `backup ${backupId} failed at ${failedStep}: ${f.message}`,
    });
  }
}
