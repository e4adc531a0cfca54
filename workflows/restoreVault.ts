// restoreVault — restore a backup into a throwaway staging OpenBao and prove the secrets are there.
// Reads like docs/runbooks/restore.md: selectBackup → verifyBackupBeforeRestore (nothing touched
// yet) → startStagingVault → restoreSnapshot → unsealTarget → verifyRestoredSecrets →
// teardownStaging (always) → recordRestore (RTO/RPO). Failures alert and are recorded too.
import { ActivityFailure, ApplicationFailure, CancellationScope, defineQuery, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { RestoreActivities } from '../activities/restore';
import type { NotifyActivities } from '../activities/notify';
import { shortHash } from '../common/backup';
import { RestoreInput, type RestoreRecord, type SecretCheck } from '../common/restore';
import { parseWorkflowInput } from '../common/validate';
import { ALERT, STORE_IO, TRANSFER } from './profiles';

const store = proxyActivities<RestoreActivities>(STORE_IO);
const transfer = proxyActivities<RestoreActivities>(TRANSFER);
const { sendAlert } = proxyActivities<NotifyActivities>(ALERT);

export type RestoreStep =
  | 'validating input'
  | 'selectBackup'
  | 'verifyBackupBeforeRestore'
  | 'startStagingVault'
  | 'restoreSnapshot'
  | 'unsealTarget'
  | 'verifyRestoredSecrets'
  | 'teardownStaging'
  | 'recordRestore'
  | 'done'
  | 'failed';

export interface RestoreProgress {
  restoreId: string;
  step: RestoreStep;
  completed: RestoreStep[];
  backupId?: string;
  stagingAddress?: string;
  error?: string;
}
export const progress = defineQuery<RestoreProgress>('progress');

export interface RestoreResult extends RestoreRecord {
  historyKey: string;
}

export async function restoreVault(rawInput?: RestoreInput): Promise<RestoreResult> {
  const info = workflowInfo();
  const startedAtMs = info.runStartTime.getTime();
  const startedAt = new Date(startedAtMs).toISOString();
  const restoreId = `${startedAt.replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${shortHash(`${info.workflowId}/${info.runId}`)}`;
  const state: RestoreProgress = { restoreId, step: 'validating input', completed: [] };
  setHandler(progress, () => state);
  let input: ReturnType<typeof RestoreInput.parse> = { backupId: 'latest', target: 'staging', reason: '(input rejected)' };
  let failedAt: RestoreStep | undefined;
  const step = async <T>(name: RestoreStep, run: () => Promise<T>): Promise<T> => {
    state.step = name;
    try {
      const out = await run();
      state.completed.push(name);
      return out;
    } catch (err) {
      failedAt ??= name; // the first failure, not the teardown that follows it
      throw err;
    }
  };

  let snapshotCreatedAt = '';
  let raftIndex = 0;
  let stagingStarted = false;
  const stagingId = `staging-${restoreId}`;
  try {
    input = parseWorkflowInput('restoreVault', RestoreInput, rawInput);
    const backup = await step('selectBackup', () => store.selectBackup({ backupId: input.backupId }));
    state.backupId = backup.backupId;
    snapshotCreatedAt = backup.createdAt;
    raftIndex = backup.raftIndex;
    await step('verifyBackupBeforeRestore', () => transfer.verifyBackupBeforeRestore({ backupId: backup.backupId }));
    let checks: SecretCheck;
    let verifiedAtMs = 0;
    try {
      stagingStarted = true;
      const staging = await step('startStagingVault', () => store.startStagingVault({ stagingId }));
      state.stagingAddress = staging.address;
      await step('restoreSnapshot', () => transfer.restoreSnapshot({ backupId: backup.backupId, stagingId }));
      await step('unsealTarget', () => store.unsealTarget({ stagingId }));
      checks = await step('verifyRestoredSecrets', () => store.verifyRestoredSecrets({ stagingId, canary: backup.canary }));
      verifiedAtMs = Date.now(); // RTO ends when the secrets are verified, not after teardown
    } finally {
      // Staging goes away on success, failure and cancellation alike.
      await CancellationScope.nonCancellable(() => step('teardownStaging', () => store.teardownStaging({ stagingId })));
    }
    const problems = [
      ...(checks.canary.matches ? [] : [`canary at ${checks.canary.path} reads "${checks.canary.found}", expected "${checks.canary.expected}"`]),
      ...checks.unreadable.map((u) => `${u.path} unreadable (${u.error})`),
    ];
    if (problems.length) throw ApplicationFailure.create({ type: 'VerificationFailed', message: `restored secrets differ: ${problems.join('; ')}`, nonRetryable: true, details: [checks] });
    const record: RestoreRecord = {
      restoreId,
      workflowId: info.workflowId,
      reason: input.reason,
      target: input.target,
      backupId: backup.backupId,
      status: 'verified',
      snapshotCreatedAt,
      startedAt,
      finishedAt: new Date(verifiedAtMs).toISOString(),
      rpoSeconds: Math.round((startedAtMs - Date.parse(snapshotCreatedAt)) / 1000),
      rtoSeconds: Math.round((verifiedAtMs - startedAtMs) / 1000),
      raftIndex,
      checks,
    };
    const saved = await step('recordRestore', () => store.recordRestore({ record }));
    state.step = 'done';
    return { ...record, historyKey: saved.key };
  } catch (err) {
    const failedStep: RestoreStep = failedAt ?? (state.step === 'validating input' ? 'validating input' : 'verifyRestoredSecrets');
    const cause = err instanceof ActivityFailure ? err.cause : err;
    const errorType = cause instanceof ApplicationFailure ? cause.type ?? 'Error' : (cause as Error)?.name ?? 'Error';
    const message = (cause as Error)?.message ?? String(err);
    state.step = 'failed';
    state.error = `${failedStep}: ${message}`;
    const now = Date.now();
    const record: RestoreRecord = {
      restoreId,
      workflowId: info.workflowId,
      reason: input.reason,
      target: input.target,
      backupId: state.backupId ?? input.backupId,
      status: 'failed',
      failedStep,
      error: message,
      snapshotCreatedAt,
      startedAt,
      finishedAt: new Date(now).toISOString(),
      rpoSeconds: snapshotCreatedAt ? Math.round((startedAtMs - Date.parse(snapshotCreatedAt)) / 1000) : 0,
      raftIndex,
    };
    await store.recordRestore({ record }).catch(() => undefined);
    await sendAlert({
      severity: 'critical',
      dedupKey: `restoreVault/${failedStep}/${errorType}`,
      summary: `Vault restore ${restoreId} (${input.reason}) failed at ${failedStep}`,
      workflowId: info.workflowId,
      runId: info.runId,
      failedStep,
      errorType,
      error: message,
      details: { backup: state.backupId ?? input.backupId, target: input.target, 'staging started': String(stagingStarted), 'staging torn down': String(state.completed.includes('teardownStaging')) },
    }).catch(() => undefined);
    throw ApplicationFailure.create({ type: errorType, message: `restore ${restoreId} failed at ${failedStep}: ${message}`, nonRetryable: true });
  }
}
