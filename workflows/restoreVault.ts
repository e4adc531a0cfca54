// restoreVault — restore a backup and prove the secrets are there. Reads like docs/runbooks/restore.md:
// selectBackup → verifyBackupBeforeRestore (nothing touched yet), then
//   staging:    startStagingVault → restoreSnapshot → unsealTarget → verifyRestoredSecrets → teardownStaging (always)
//   production: planProductionRestore → awaitApproval (approveRestore update) → restoreSnapshot →
//               awaitTargetUnsealed (a human restarts/unseals) → verifyRestoredSecrets
// → recordRestore (RTO/RPO). Failures alert and are recorded too.
import { ActivityFailure, ApplicationFailure, CancellationScope, condition, defineQuery, defineSignal, defineUpdate, proxyActivities, setHandler, sleep, workflowInfo } from '@temporalio/workflow';
import type { ProductionPlan, RestoreActivities } from '../activities/restore';
import type { NotifyActivities } from '../activities/notify';
import { shortHash } from '../common/backup';
import { Approval, RestoreInput, type RestoreRecord, type SecretCheck } from '../common/restore';
import { describeIssues } from '../common/validate';
import { parseWorkflowInput } from '../common/validate';
import { ALERT, STAGING, STORE_IO, TRANSFER } from './profiles';
import { activityQueue } from './queues';

const store = proxyActivities<RestoreActivities>({ ...STORE_IO, taskQueue: activityQueue('restore') });
const transfer = proxyActivities<RestoreActivities>({ ...TRANSFER, taskQueue: activityQueue('restore') });
const stagingOps = proxyActivities<RestoreActivities>({ ...STAGING, taskQueue: activityQueue('restore') });
const { sendAlert } = proxyActivities<NotifyActivities>({ ...ALERT, taskQueue: activityQueue('notify') });

export type RestoreStep =
  | 'validating input'
  | 'selectBackup'
  | 'verifyBackupBeforeRestore'
  | 'startStagingVault'
  | 'restoreSnapshot'
  | 'unsealTarget'
  | 'verifyRestoredSecrets'
  | 'teardownStaging'
  | 'openShareIntake'
  | 'awaitCustodianShares'
  | 'closeShareIntake'
  | 'planProductionRestore'
  | 'awaitApproval'
  | 'awaitTargetUnsealed'
  | 'recordRestore'
  | 'done'
  | 'failed';

export interface RestoreProgress {
  restoreId: string;
  step: RestoreStep;
  completed: RestoreStep[];
  backupId?: string;
  stagingAddress?: string;
  /** Production: what would be replaced, shown before approval. */
  plan?: ProductionPlan;
  approval?: Approval;
  /** Custodian shares received by the worker (counts only). */
  shares?: { received: number; threshold: number; keyId: string };
  /** Production: what the workflow waits for a human to do. */
  waitingFor?: string;
  error?: string;
}
export const progress = defineQuery<RestoreProgress>('progress');

/** Sent by the worker's share intake when enough custodian shares arrived (counts only). */
export const custodianSharesReady = defineSignal<[{ received: number; threshold: number; keyId: string }]>('custodianSharesReady');

/** A responder approves (or refuses) a production restore after reading the plan from `progress`. */
export const approveRestore = defineUpdate<{ accepted: true; approve: boolean }, [Approval]>('approveRestore');

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
  let input: ReturnType<typeof RestoreInput.parse> = { backupId: 'latest', target: 'staging', reason: '(input rejected)', keySource: 'validation-key', approvalTimeoutMinutes: 0, remindEveryMinutes: 0 };
  setHandler(custodianSharesReady, (s) => {
    state.shares = s;
  });
  setHandler(
    approveRestore,
    (a) => {
      state.approval = Approval.parse(a);
      return { accepted: true, approve: state.approval.approve };
    },
    {
      // Rejected updates leave no trace in history: a wrong or premature decision changes nothing.
      validator: (a) => {
        if (state.step !== 'awaitApproval' || !state.plan) throw new Error(`restore ${restoreId} is not waiting for approval (step: ${state.step})`);
        const parsed = Approval.safeParse(a);
        if (!parsed.success) throw new Error(`approveRestore: ${describeIssues(parsed.error.issues)}`);
        const p = state.plan;
        if (parsed.data.approve && p.older && !parsed.data.allowOlderSnapshot) {
          throw new Error(`backup ${p.backupId} (raft index ${p.backupRaftIndex}) is older than the data on ${p.targetAddress} (raft index ${p.targetRaftIndex}); approve with allowOlderSnapshot: true to replace newer data`);
        }
      },
    },
  );
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

  /** Waits durably for a human, reminding every remindEveryMinutes and failing after approvalTimeoutMinutes. */
  const awaitHuman = async (what: string, done: () => boolean, instruction: string): Promise<void> => {
    state.waitingFor = `${what}: ${instruction}`;
    const deadline = Date.now() + input.approvalTimeoutMinutes * 60_000;
    let reminder = 0;
    while (!(await condition(done, Math.min(input.remindEveryMinutes * 60_000, Math.max(1, deadline - Date.now()))))) {
      if (Date.now() >= deadline) {
        throw ApplicationFailure.create({ type: 'ApprovalTimeout', message: `no ${what} within ${input.approvalTimeoutMinutes} minutes`, nonRetryable: true });
      }
      reminder++;
      await sendAlert({
        severity: reminder >= 3 ? 'critical' : 'warning',
        dedupKey: `restoreVault/${info.workflowId}/waiting-for-${what}/${reminder}`,
        summary: `Vault restore ${restoreId} is waiting for ${what} (reminder ${reminder})`,
        workflowId: info.workflowId,
        runId: info.runId,
        details: { instruction, backup: state.backupId ?? '', target: state.plan?.targetAddress ?? '' },
      }).catch(() => undefined);
    }
    state.waitingFor = undefined;
  };

  /** After a forced restore the target may seal itself; a human restarts and unseals it. */
  const awaitTargetUnsealed = async (target: { kind: 'production' }): Promise<void> => {
    let unsealed = false;
    const poll = async () => {
      const r = await store.checkTargetUnsealed({ target, expectClusterId: state.plan!.backupClusterId });
      unsealed = r.unsealed;
      state.waitingFor = unsealed ? undefined : `target unsealed: ${r.detail}; restart the server if it is sealed, then unseal it with the backed-up cluster's key shares (docs/runbooks/restore.md)`;
    };
    await poll();
    const deadline = Date.now() + input.approvalTimeoutMinutes * 60_000;
    let lastReminder = Date.now();
    let reminder = 0;
    while (!unsealed) {
      if (Date.now() >= deadline) throw ApplicationFailure.create({ type: 'ApprovalTimeout', message: `target not unsealed within ${input.approvalTimeoutMinutes} minutes`, nonRetryable: true });
      if (Date.now() - lastReminder >= input.remindEveryMinutes * 60_000) {
        lastReminder = Date.now();
        reminder++;
        await sendAlert({
          severity: 'critical',
          dedupKey: `restoreVault/${info.workflowId}/waiting-for-unseal/${reminder}`,
          summary: `Vault restore ${restoreId}: the restored cluster is still sealed (reminder ${reminder})`,
          workflowId: info.workflowId,
          runId: info.runId,
          details: { instruction: state.waitingFor ?? '' },
        }).catch(() => undefined);
      }
      await sleep('5s');
      await poll();
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
    const keySource = input.keySource;
    let checks!: SecretCheck;
    let verifiedAtMs = 0;
    try {
      if (keySource === 'custodian-shares') {
        await step('openShareIntake', () => store.openShareIntake({ backupId: backup.backupId }));
        await step('awaitCustodianShares', () =>
          awaitHuman('custodian shares', () => state.shares !== undefined, `each custodian runs: vaultdr keys submit-share ${info.workflowId} SHARE_FILE (until the threshold is reached)`),
        );
      }
      await step('verifyBackupBeforeRestore', () => transfer.verifyBackupBeforeRestore({ backupId: backup.backupId, keySource }));
      if (input.target === 'production') {
        const target = { kind: 'production' as const };
        state.plan = await step('planProductionRestore', () => store.planProductionRestore({ backupId: backup.backupId }));
        await step('awaitApproval', () => awaitHuman('approval', () => state.approval !== undefined, `approve or refuse with: vaultdr restore approve ${info.workflowId} --who NAME --why REASON`));
        if (!state.approval!.approve) {
          failedAt = 'awaitApproval'; // a refusal is the outcome of this step, not of a later one
          throw ApplicationFailure.create({ type: 'RestoreRefused', message: `refused by ${state.approval!.who}: ${state.approval!.why}; the target was not touched`, nonRetryable: true });
        }
        await step('restoreSnapshot', () => transfer.restoreSnapshot({ backupId: backup.backupId, target, keySource }));
        await step('awaitTargetUnsealed', () => awaitTargetUnsealed(target));
        checks = await step('verifyRestoredSecrets', () => stagingOps.verifyRestoredSecrets({ target, canary: backup.canary, kv: backup.kv }));
        verifiedAtMs = Date.now();
      } else {
        const target = { kind: 'staging' as const, stagingId };
        try {
          stagingStarted = true;
          const staging = await step('startStagingVault', () => stagingOps.startStagingVault({ stagingId }));
          state.stagingAddress = staging.address;
          await step('restoreSnapshot', () => transfer.restoreSnapshot({ backupId: backup.backupId, target, keySource }));
          await step('unsealTarget', () => stagingOps.unsealTarget({ stagingId }));
          checks = await step('verifyRestoredSecrets', () => stagingOps.verifyRestoredSecrets({ target, canary: backup.canary, kv: backup.kv }));
          verifiedAtMs = Date.now(); // RTO ends when the secrets are verified, not after teardown
        } finally {
          // Staging goes away on success, failure and cancellation alike.
          await CancellationScope.nonCancellable(() => step('teardownStaging', () => stagingOps.teardownStaging({ stagingId })));
        }
      }
    } finally {
      // The rebuilt escrow key leaves the worker's memory whatever happened.
      if (keySource === 'custodian-shares') await CancellationScope.nonCancellable(() => store.closeShareIntake());
    }
    const problems = [
      ...(checks.canary.matches ? [] : [`canary at ${checks.canary.path} reads "${checks.canary.found}", expected "${checks.canary.expected}"`]),
      ...checks.unreadable.map((u) => `${u.path} unreadable (${u.error})`),
      ...(checks.kv && !checks.kv.matches
        ? [`KV ${checks.kv.mount}: ${checks.kv.paths} paths / ${checks.kv.versions} versions restored, manifest says ${checks.kv.expected.paths.join('–')} paths / ${checks.kv.expected.versions.join('–')} versions`]
        : []),
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
      ...(state.approval ? { approval: state.approval } : {}),
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
      ...(state.approval ? { approval: state.approval } : {}),
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
