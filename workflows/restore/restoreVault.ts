// restoreVault — restore a backup and prove the secrets are there. Reads like docs/runbooks/restore.md:
// selectBackup → verifyBackupBeforeRestore (nothing touched yet), then
//   staging:    startStagingVault → restoreSnapshot → unsealTarget → verifyRestoredSecrets → teardownStaging (always)
//   production: planProductionRestore → awaitApproval (approveRestore update) → restoreSnapshot →
//               awaitTargetUnsealed (a human restarts/unseals) → verifyRestoredSecrets
// → recordRestore (RTO/RPO). Failures alert and are recorded too (failRunbook); waits for people and
// for the unseal use the shared awaitHuman / pollUntil, so a 24 h wait costs a bounded history.
import { ApplicationFailure, CancellationScope, defineQuery, defineUpdate, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import { SearchAttributeType, defineSearchAttributeKey } from '@temporalio/common';
import type { ProductionPlan, RestoreActivities } from '../../activities/restore/restore';
import { shortHash } from '../../common/backup';
import { Approval, RestoreInput, SharesReady, isMistypedBackupId, samePerson, type RestoreRecord, type SecretCheck } from '../../common/restore';
import { describeIssues, parseWorkflowInput } from '../../common/validate';
import { STAGING, STORE_IO, TRANSFER } from '../profiles';
import { BACKUP_ID, RESTORE_TARGET } from '../../common/searchAttributes';
import { POLL, awaitHuman, failRunbook, onCustodianSharesReady, pollUntil, showAttribute, showStep, steps, summarized, type AlertContext, describeRun } from '../helpers';
import { activityQueue } from '../queues';

// Each activity bound to its profile here, once: STORE_IO ones heartbeat (RESTORE_STORE_IO), TRANSFER
// ones move a backup, STAGING ones drive a server, POLL is the long unseal wait.
const { selectBackup, openShareIntake, closeShareIntake, planProductionRestore, recordRestore } = proxyActivities<RestoreActivities>({ ...STORE_IO, taskQueue: activityQueue('restore') });
const { verifyBackupBeforeRestore, restoreSnapshot } = proxyActivities<RestoreActivities>({ ...TRANSFER, taskQueue: activityQueue('restore') });
const { startStagingVault, unsealTarget, verifyRestoredSecrets, teardownStaging } = proxyActivities<RestoreActivities>({ ...STAGING, taskQueue: activityQueue('restore') });
const { pollTargetUnsealed } = proxyActivities<RestoreActivities>({ ...POLL, taskQueue: activityQueue('restore') });

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
  /** Who started the restore (production: never the approver). */
  requestedBy?: string;
  approval?: Approval;
  /** Custodian shares received by the worker (counts only). */
  shares?: { received: number; threshold: number; keyId: string };
  /** Production: what the workflow waits for a human to do. */
  waitingFor?: string;
  error?: string;
}
export const progress = defineQuery<RestoreProgress>('progress');

/** Sent by the worker's share intake when enough custodian shares arrived (counts only). */
export { custodianSharesReady } from '../helpers';

/**
 * A responder approves (or refuses) a production restore after reading the plan from `progress`.
 * Two-person rule: the approver must not be the person who started it (`requestedBy`).
 */
export const approveRestore = defineUpdate<{ accepted: true; approve: boolean }, [Approval]>('approveRestore');

export interface RestoreResult extends RestoreRecord {
  historyKey: string;
}

const SCHEDULED_BY = defineSearchAttributeKey('TemporalScheduledById', SearchAttributeType.KEYWORD);

export async function restoreVault(rawInput?: RestoreInput): Promise<RestoreResult> {
  describeRun(rawInput);
  const info = workflowInfo();
  const startedAtMs = info.runStartTime.getTime();
  const startedAt = new Date(startedAtMs).toISOString();
  const restoreId = `${startedAt.replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${shortHash(`${info.workflowId}/${info.runId}`)}`;
  const scheduled = !!info.typedSearchAttributes.get(SCHEDULED_BY);
  // What every restore record (verified, failed, cancelled) starts with.
  const recordHead = () => ({
    restoreId,
    workflowId: info.workflowId,
    reason: input.reason,
    target: input.target,
    ...(input.requestedBy ? { requestedBy: input.requestedBy } : {}),
    ...(scheduled ? { scheduled } : {}),
  });
  const state: RestoreProgress = { restoreId, step: 'validating input', completed: [] };
  setHandler(progress, () => state);
  let input: ReturnType<typeof RestoreInput.parse> = { backupId: 'latest', target: 'staging', reason: '(input rejected)', keySource: 'validation-key', approvalTimeoutMinutes: 0, remindEveryMinutes: 0 };
  // Sent by the worker's share intake (a machine, fire-and-forget): a malformed or premature one is
  // ignored with a warning, so the wait goes on until a valid one arrives (or its deadline).
  onCustodianSharesReady(SharesReady, (s) => (state.shares = s));
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
        // Refusing your own restore is always allowed; approving it is not.
        if (parsed.data.approve && samePerson(parsed.data.who, input.requestedBy)) {
          throw new Error(`approveRestore: ${parsed.data.who} started this restore (requestedBy); a production restore needs a second person to approve it (two-person rule)`);
        }
        const p = state.plan;
        if (parsed.data.approve && p.older && !parsed.data.allowOlderSnapshot) {
          throw new Error(`backup ${p.backupId} (raft index ${p.backupRaftIndex}) is older than the data on ${p.targetAddress} (raft index ${p.targetRaftIndex}); approve with allowOlderSnapshot: true to replace newer data`);
        }
      },
    },
  );
  const { step, failedAt, markFailed, done } = steps<RestoreStep>(state);
  showStep('validating input');
  const alert: AlertContext = {
    workflow: 'restoreVault',
    subject: `Vault restore ${restoreId}`,
    details: () => ({ backup: state.backupId ?? input.backupId, target: state.plan?.targetAddress ?? input.target, reason: input.reason }),
  };
  const wait = () => ({ timeoutMinutes: input.approvalTimeoutMinutes, remindEveryMinutes: input.remindEveryMinutes, state, alert });

  let snapshotCreatedAt = '';
  let raftIndex = 0;
  let stagingStarted = false;
  const stagingId = `staging-${restoreId}`;
  try {
    input = parseWorkflowInput('restoreVault', RestoreInput, rawInput);
    state.requestedBy = input.requestedBy;
    showAttribute(RESTORE_TARGET, input.target);
    const backup = await step('selectBackup', () => summarized(selectBackup, `Select backup ${input.backupId}`, { backupId: input.backupId }));
    state.backupId = backup.backupId;
    showAttribute(BACKUP_ID, backup.backupId);
    snapshotCreatedAt = backup.createdAt;
    raftIndex = backup.raftIndex;
    const keySource = input.keySource;
    let checks!: SecretCheck;
    let verifiedAtMs = 0;
    try {
      if (keySource === 'custodian-shares') {
        await step('openShareIntake', () => openShareIntake({ backupId: backup.backupId }));
        await step('awaitCustodianShares', () =>
          awaitHuman({ ...wait(), what: 'custodian shares', done: () => state.shares !== undefined, instruction: `each custodian runs: vaultdr keys submit-share ${info.workflowId} SHARE_FILE (until the threshold is reached)` }),
        );
      }
      await step('verifyBackupBeforeRestore', () => summarized(verifyBackupBeforeRestore, `Verify backup ${backup.backupId} (${keySource})`, { backupId: backup.backupId, keySource }));
      if (input.target === 'production') {
        const target = { kind: 'production' as const };
        state.plan = await step('planProductionRestore', () => summarized(planProductionRestore, `Plan the production restore of ${backup.backupId}`, { backupId: backup.backupId }));
        await step('awaitApproval', () =>
          awaitHuman({ ...wait(), what: 'approval', done: () => state.approval !== undefined, instruction: `someone other than ${input.requestedBy} approves or refuses with: vaultdr restore approve ${info.workflowId} --who NAME --why REASON` }),
        );
        if (!state.approval!.approve) {
          markFailed('awaitApproval'); // a refusal is the outcome of this step, not of a later one
          throw ApplicationFailure.create({ type: 'RestoreRefused', message: `refused by ${state.approval!.who}: ${state.approval!.why}; the target was not touched`, nonRetryable: true });
        }
        await step('restoreSnapshot', () => summarized(restoreSnapshot, `Restore ${backup.backupId} into ${input.target}`, { backupId: backup.backupId, target, keySource }));
        // After a forced restore the target may seal itself; a human restarts and unseals it.
        await step('awaitTargetUnsealed', () =>
          pollUntil({
            ...wait(),
            what: 'target unsealed',
            escalateAfter: 1, // a sealed production cluster is an outage: every reminder pages
            instruction: "restart the server if it is sealed, then unseal it with the backed-up cluster's key shares (docs/runbooks/restore.md)",
            poll: ({ untilIso }) => pollTargetUnsealed({ target, expectClusterId: state.plan!.backupClusterId, untilIso }),
          }),
        );
        checks = await step('verifyRestoredSecrets', () => verifyRestoredSecrets({ target, canary: backup.canary, kv: backup.kv }));
        verifiedAtMs = Date.now();
      } else {
        const target = { kind: 'staging' as const, stagingId };
        try {
          stagingStarted = true;
          const staging = await step('startStagingVault', () => startStagingVault({ stagingId }));
          state.stagingAddress = staging.address;
          await step('restoreSnapshot', () => summarized(restoreSnapshot, `Restore ${backup.backupId} into ${input.target}`, { backupId: backup.backupId, target, keySource }));
          await step('unsealTarget', () => unsealTarget({ stagingId }));
          checks = await step('verifyRestoredSecrets', () => verifyRestoredSecrets({ target, canary: backup.canary, kv: backup.kv }));
          verifiedAtMs = Date.now(); // RTO ends when the secrets are verified, not after teardown
        } finally {
          // Staging goes away on success, failure and cancellation alike.
          await CancellationScope.nonCancellable(() => step('teardownStaging', () => teardownStaging({ stagingId })));
        }
      }
    } finally {
      // The rebuilt escrow key leaves the worker's memory whatever happened.
      if (keySource === 'custodian-shares') await CancellationScope.nonCancellable(() => closeShareIntake());
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
      ...recordHead(),
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
    const saved = await step('recordRestore', () => recordRestore({ record }));
    done();
    return { ...record, historyKey: saved.key };
  } catch (err) {
    const failedStep: RestoreStep = failedAt() ?? (state.step === 'validating input' ? 'validating input' : 'verifyRestoredSecrets');
    const failedRecord = (errorType: string, message: string, cancelled: boolean): RestoreRecord => ({
      ...recordHead(),
      backupId: state.backupId ?? input.backupId,
      status: cancelled ? 'cancelled' : 'failed',
      failedStep,
      errorType,
      error: message,
      snapshotCreatedAt,
      startedAt,
      finishedAt: new Date(Date.now()).toISOString(),
      rpoSeconds: snapshotCreatedAt ? Math.round((startedAtMs - Date.parse(snapshotCreatedAt)) / 1000) : 0,
      raftIndex,
      ...(state.approval ? { approval: state.approval } : {}),
    });
    return failRunbook(err, {
      failedStep,
      state,
      alert: {
        ...alert,
        subject: `Vault restore ${restoreId} (${input.reason})`,
        details: () => ({ ...alert.details!(), 'staging started': String(stagingStarted), 'staging torn down': String(state.completed.includes('teardownStaging')) }),
      },
      // A person's mistyped backup id is answered by the failure itself; it does not page on-call.
      severity: (f) => (isMistypedBackupId({ target: input.target, backupId: state.backupId ?? input.backupId, errorType: f.errorType, scheduled }) ? 'warning' : 'critical'),
      record: (f) => recordRestore({ record: failedRecord(f.errorType, f.message, f.cancelled) }),
      failureMessage: (f) => `restore ${restoreId} failed at ${failedStep}: ${f.message}`,
    });
  }
}
