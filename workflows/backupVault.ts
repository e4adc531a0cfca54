// backupVault — the daily encrypted backup. Reads like docs/runbooks/backup.md:
// checkBackupBucket → writeCanary → snapshotToStore → verifyUploadedBackup → pruneBackups.
// Any failure sends an alert naming the failed step, and retention never runs after a failure.
import { ActivityFailure, ApplicationFailure, defineQuery, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { BackupActivities } from '../activities/backup';
import type { NotifyActivities } from '../activities/notify';
import { BackupInput, backupIdFor, type BackupResult } from '../common/backup';
import { parseWorkflowInput } from '../common/validate';
import { ALERT, STORE_IO, TRANSFER } from './profiles';
import { activityQueue } from './queues';

const store = proxyActivities<BackupActivities>({ ...STORE_IO, taskQueue: activityQueue('backup') });
const transfer = proxyActivities<BackupActivities>({ ...TRANSFER, taskQueue: activityQueue('backup') });
const { sendAlert } = proxyActivities<NotifyActivities>({ ...ALERT, taskQueue: activityQueue('notify') });

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
  const info = workflowInfo();
  const backupId = backupIdFor(new Date(info.runStartTime).toISOString(), info.workflowId, info.runId);
  const state: BackupProgress = { backupId, step: 'validating input', completed: [] };
  setHandler(progress, () => state);
  let input: ReturnType<typeof BackupInput.parse> | undefined;

  const step = async <T>(name: BackupStep, run: () => Promise<T>): Promise<T> => {
    state.step = name;
    const out = await run();
    state.completed.push(name);
    return out;
  };

  try {
    input = parseWorkflowInput('backupVault', BackupInput, rawInput);
    const { trigger, prune, retention } = input;
    await step('checkBackupBucket', () => store.checkBackupBucket());
    const canary = await step('writeCanary', () => store.writeCanary({ backupId }));
    const uploaded = await step('snapshotToStore', () =>
      transfer.snapshotToStore({
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
    await step('verifyUploadedBackup', () => transfer.verifyUploadedBackup({ backupId }));
    const pruned = prune
      ? await step('pruneBackups', () => store.pruneBackups({ retention, justVerified: backupId }))
      : { deleted: [], kept: 0, unverified: [] };
    state.step = 'done';
    return {
      backupId,
      status: 'verified',
      objectKey: uploaded.objectKey,
      manifestKey: uploaded.manifestKey,
      plaintextBytes: uploaded.plaintextBytes,
      objectBytes: uploaded.objectBytes,
      objectSha256: uploaded.objectSha256,
      raftIndex: uploaded.raftIndex,
      pruned: pruned.deleted,
      keptCount: pruned.kept,
      unverifiedKept: pruned.unverified,
      verifyCommand: `vaultdr backup verify ${backupId}`,
    };
  } catch (err) {
    const failedStep = state.step;
    const cause = err instanceof ActivityFailure ? err.cause : err;
    const errorType = cause instanceof ApplicationFailure ? cause.type ?? 'Error' : (cause as Error)?.name ?? 'Error';
    const message = (cause as Error)?.message ?? String(err);
    state.step = 'failed';
    state.error = `${failedStep}: ${message}`;
    await sendAlert({
      severity: 'critical',
      dedupKey: `backupVault/${failedStep}/${errorType}`,
      summary: `Vault backup ${backupId} failed at ${failedStep}`,
      workflowId: info.workflowId,
      runId: info.runId,
      failedStep,
      errorType,
      error: message,
      details: { backup: backupId, trigger: input?.trigger ?? '(input rejected)', 'no retention ran': 'true' },
    }).catch(() => undefined); // the failure itself is still reported below
    throw ApplicationFailure.create({ type: errorType, message: `backup ${backupId} failed at ${failedStep}: ${message}`, nonRetryable: true });
  }
}
