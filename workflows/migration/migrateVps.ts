// migrateVps — move the mail VPS onto a new host. Reads like docs/runbooks/vps-migration.md:
//   preflightTarget (new host; old host when reachable) → [restoreSecretsFromBackup when the live
//   Vault is unavailable] → readMigrationSecrets → deploySshKeys → recoverSmtpCredentials (child) →
//   installDkimKey → sendTestEmail → copyMailboxes (old host reachable) → awaitCutover (update
//   approveCutover) → recordCutover (the switch, the final mail sync, then the checks again) → teardownStaging.
// A failure after a change runs the compensations in reverse order (previous mail configuration,
// previous authorized_keys), sends one alert naming the step (failRunbook) and fails with a message
// that lists exactly what was undone. Secrets never enter history: activities read them by path.
import { ApplicationFailure, CancellationScope, ChildWorkflowFailure, defineQuery, defineUpdate, executeChild, patched, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { MigrationActivities } from '../../activities/migration';
import { shortHash } from '../../common/backup';
import { CutoverApproval, MigrateInput, type Compensation, type MailCheck, type MailCopy, type MigrateParsed, type MigrateResult, type PreflightReport, type SecretRef, type SecretSource, type StepTiming } from '../../common/migration';
import { describeIssues, parseWorkflowInput } from '../../common/validate';
import { MIGRATION } from '../profiles';
import { awaitHuman, describeRun, failRunbook, showStep, steps, summarized, type AlertContext, type StepState } from '../helpers';
import { activityQueue } from '../queues';
import { recoverSmtpCredentials } from './recoverSmtpCredentials';
import { chooseSource, closeSecretSource, openBackupSource } from './secretSource';

const { copyMailboxes, deploySshKeys, installDkimKey, preflightTarget, readMigrationSecrets, restoreMailConfig, restoreSshKeys, sendTestEmail, verifyWebmailLogin } = proxyActivities<MigrationActivities>({ ...MIGRATION, taskQueue: activityQueue('migration') });

export type MigrateStep =
  | 'preflightTarget'
  | 'restoreSecretsFromBackup'
  | 'readMigrationSecrets'
  | 'deploySshKeys'
  | 'recoverSmtpCredentials'
  | 'installDkimKey'
  | 'sendTestEmail'
  | 'copyMailboxes'
  | 'awaitCutover'
  | 'recordCutover'
  | 'teardownStaging';

export interface MigrateProgress extends StepState<MigrateStep> {
  migrationId: string;
  source?: SecretSource['kind'];
  backupId?: string;
  timings: StepTiming[];
  compensations: Compensation[];
  waitingFor?: string;
  cutover?: CutoverApproval & { at: string };
  error?: string;
}
export const progress = defineQuery<MigrateProgress>('progress');

/** The operator's go for the DNS/IP switch, after reading the checks in `progress`. */
export const approveCutover = defineUpdate<{ accepted: true; approve: boolean }, [CutoverApproval]>('approveCutover');

export async function migrateVps(raw?: MigrateInput): Promise<MigrateResult> {
  const info = workflowInfo();
  const startedAt = new Date(info.runStartTime.getTime()).toISOString();
  const migrationId = `${startedAt.replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${shortHash(`${info.workflowId}/${info.runId}`)}`;
  const state: MigrateProgress = { migrationId, step: 'validating input', completed: [], timings: [], compensations: [] };
  setHandler(progress, () => state);
  describeRun(raw);
  setHandler(
    approveCutover,
    (a) => {
      const parsed = CutoverApproval.parse(a);
      state.cutover = { ...parsed, at: new Date(Date.now()).toISOString() };
      return { accepted: true, approve: parsed.approve };
    },
    {
      // A refused update leaves no trace in history.
      validator: (a) => {
        if (state.step !== 'awaitCutover') throw new Error(`migration ${migrationId} is not waiting for the cutover (step: ${state.step})`);
        const parsed = CutoverApproval.safeParse(a);
        if (!parsed.success) throw new Error(`approveCutover: ${describeIssues(parsed.error.issues)}`);
      },
    },
  );
  const { step: stepOf, failedAt, markFailed, done } = steps<MigrateStep>(state);
  // Every step is timed (the drill report and the result carry the timings).
  const step = <T>(name: MigrateStep, run: () => Promise<T>): Promise<T> =>
    stepOf(name, async () => {
      const t0 = Date.now();
      try {
        return await run();
      } finally {
        state.timings.push({ step: name, startedAt: new Date(t0).toISOString(), seconds: Math.round((Date.now() - t0) / 100) / 10 });
      }
    });
  showStep('validating input');
  let input: MigrateParsed = { newHost: {}, oldHost: {}, secretSource: 'auto', backupId: 'latest', copyMail: false, awaitCutover: true, cutoverTimeoutMinutes: 1, remindEveryMinutes: 1, reason: '(input rejected)' };
  const alert: AlertContext = { workflow: 'migrateVps', subject: `VPS migration ${migrationId}`, details: () => ({ 'new host': input.newHost.address ?? '(from config)', source: state.source ?? input.secretSource }) };
  let source: SecretSource | undefined;
  // Compensations registered BEFORE the step that changes something (a step may fail half-way).
  const undo: { step: MigrateStep; what: string; run: () => Promise<string> }[] = [];
  try {
    input = parseWorkflowInput('migrateVps', MigrateInput, raw);
    const newHost = input.newHost;
    const oldRef = input.oldHost;
    const { newReport, oldReport } = await step('preflightTarget', async () => {
      const n = (await summarized(preflightTarget, 'Preflight the new VPS (pinned host key)', { which: 'new', host: newHost })) as PreflightReport;
      const o = oldRef === false ? ({ skipped: true } as const) : await summarized(preflightTarget, 'Preflight the old VPS when reachable', { which: 'old', host: oldRef });
      return { newReport: n, oldReport: o };
    });
    const choice = await chooseSource(input.secretSource);
    if (choice.useBackup) {
      source = await step('restoreSecretsFromBackup', () => openBackupSource(input.backupId, `staging-${migrationId}`));
    } else source = { kind: 'live' };
    const src = source;
    state.source = src.kind;
    if (src.kind === 'backup') state.backupId = src.backupId;
    const { secrets } = await step('readMigrationSecrets', () => readMigrationSecrets({ source: src }));
    undo.push({ step: 'deploySshKeys', what: 'previous authorized_keys', run: async () => (await restoreSshKeys({ host: newHost, migrationId })).detail });
    const ssh = await step('deploySshKeys', () => summarized(deploySshKeys, 'Deploy the operators\' SSH keys (atomic, previous kept)', { host: newHost, source: src, migrationId }));
    undo.push({
      step: 'recoverSmtpCredentials',
      what: 'previous mail configuration (mailu.env, DKIM key)',
      run: async () => {
        const r = await restoreMailConfig({ host: newHost, migrationId, source: src });
        return `restored ${r.restored.join(', ') || 'nothing'}; ${r.applied}`;
      },
    });
    const smtp = await step('recoverSmtpCredentials', () =>
      executeChild(recoverSmtpCredentials, { workflowId: `${info.workflowId}-smtp`, args: [{ newHost, openedSource: src, configBackupId: migrationId, reason: `migration ${migrationId}` }] }),
    );
    const dkim = await step('installDkimKey', () => summarized(installDkimKey, 'Check the DKIM key against DNS, then install it', { host: newHost, source: src }));
    const mail: MailCheck = await step('sendTestEmail', () => summarized(sendTestEmail, 'Send a test mail and check DKIM/SPF/DMARC', { host: newHost, source: src, migrationId, label: 'before cutover' }));
    // Mail data: only from an old host that answered the preflight (a dead one: restore the mail from its backup).
    // patched: runs recorded before this step existed replay without it.
    const mailCopy: MailCopy[] = [];
    const oldAlive = oldRef !== false && !('unreachable' in oldReport) && !('skipped' in oldReport);
    const copyMail = input.copyMail && oldAlive && patched('copyMailboxes');
    if (copyMail) mailCopy.push(await step('copyMailboxes', () => summarized(copyMailboxes, 'Copy the mailboxes old → new (Maildir over SSH, checksums)', { host: newHost, oldHost: oldRef, label: 'before cutover' })));
    let cutover: MigrateResult['cutover'];
    let status: MigrateResult['status'] = 'ready for cutover';
    if (input.awaitCutover) {
      await step('awaitCutover', () =>
        awaitHuman({
          what: 'cutover approval',
          instruction: `switch DNS/IP only after: vaultdr migration approve-cutover ${info.workflowId} --who NAME --why REASON`,
          timeoutMinutes: input.cutoverTimeoutMinutes,
          remindEveryMinutes: input.remindEveryMinutes,
          escalateAfter: 3,
          state,
          alert,
          done: () => state.cutover !== undefined,
        }),
      );
      const c = state.cutover!;
      if (!c.approve) {
        markFailed('awaitCutover');
        throw ApplicationFailure.create({ type: 'CutoverRefused', message: `cutover refused by ${c.who}: ${c.why}`, nonRetryable: true });
      }
      // The switch is recorded; then the checks run again against the host now serving.
      const recheck = await step('recordCutover', async () => {
        // What reached the old host until the switch: the final sync copies only what is new.
        if (copyMail) mailCopy.push(await copyMailboxes({ host: newHost, oldHost: oldRef, label: 'final sync after cutover' }));
        const m = await sendTestEmail({ host: newHost, source: src, migrationId, label: 'after cutover' });
        await verifyWebmailLogin({ host: newHost, source: src });
        return m;
      });
      cutover = { who: c.who, why: c.why, at: c.at, recheck };
      status = 'migrated';
    }
    if (src.kind === 'backup') await step('teardownStaging', () => closeSecretSource(src));
    source = undefined;
    done();
    return {
      migrationId,
      status,
      newHost: newReport,
      oldHost: oldReport,
      secretSource: src.kind,
      ...(src.kind === 'backup' ? { backupId: src.backupId } : {}),
      secrets: secrets as SecretRef[],
      sshKeys: ssh,
      smtp,
      dkim: { selector: dkim.selector, domain: dkim.domain, publicKeySha256: dkim.publicKeySha256, dnsMatches: dkim.dnsMatches },
      mail,
      ...(cutover ? { cutover } : {}),
      ...(mailCopy.length ? { mailCopy } : {}),
      timings: state.timings,
    };
  } catch (err) {
    const failed = failedAt() ?? (state.step === 'validating input' ? 'validating input' : state.step);
    // Undo in reverse order, each recorded; a compensation that fails is said so, the others still run.
    await CancellationScope.nonCancellable(async () => {
      for (const u of [...undo].reverse()) {
        const c = await u.run().then(
          (detail) => ({ step: u.step, what: u.what, undone: true, detail }),
          (e: Error) => ({ step: u.step, what: u.what, undone: false, detail: `compensation failed: ${e.message}` }),
        );
        state.compensations.push(c);
      }
      if (source) await closeSecretSource(source).catch(() => undefined);
    });
    const undone = state.compensations.map((c) => `${c.what} ${c.undone ? 'restored' : 'NOT restored'} (${c.detail})`).join('; ');
    // The child's own failure (type and message) is what the operator needs, not "child failed".
    const cause = err instanceof ChildWorkflowFailure && err.cause ? err.cause : err;
    return failRunbook(cause, {
      failedStep: String(failed),
      state,
      alert: { ...alert, details: () => ({ ...alert.details!(), undone: undone || 'nothing had been changed' }) },
      failureMessage: (f) => `migration ${migrationId} failed at ${failed}: ${f.message}; ${undone ? `undone: ${undone}` : 'nothing had been changed on the hosts'}`,
    });
  }
}
