// recoverSmtpCredentials — Phase 8 of the checklist, docs/runbooks/smtp-recovery.md:
//   openSecretSource (live Vault, or the latest verified backup restored into a throwaway OpenBao when
//   Vault is unavailable) → validateDecryptionPath (hop by hop, no value read out) → keepMailConfig →
//   reconfigureMailHost (mailu.env relay settings, mailbox password, apply) → verifyWebmailLogin
//   (webmail form + session + inbox, IMAP) → teardownStaging.
// Runs standalone (the SMTP recovery drill, an operator) or as a child of migrateVps, which then
// passes the source it opened and does compensation and the alert itself (one alert per failure).
import { ApplicationFailure, CancellationScope, defineQuery, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { MigrationActivities } from '../../activities/migration';
import { RecoverSmtpInput, type Compensation, type SecretSource, type SmtpRecoveryResult } from '../../common/migration';
import { parseWorkflowInput } from '../../common/validate';
import { shortHash } from '../../common/backup';
import { MIGRATION } from '../profiles';
import { describeFailure, describeRun, failRunbook, showStep, steps, summarized, type StepState } from '../helpers';
import { activityQueue } from '../queues';
import { chooseSource, closeSecretSource, openBackupSource } from './secretSource';

const { keepMailConfig, reconfigureMailHost, restoreMailConfig, validateDecryptionPath, verifyWebmailLogin } = proxyActivities<MigrationActivities>({ ...MIGRATION, taskQueue: activityQueue('migration') });

export type SmtpStep = 'openSecretSource' | 'validateDecryptionPath' | 'keepMailConfig' | 'reconfigureMailHost' | 'verifyWebmailLogin' | 'restoreMailConfig' | 'teardownStaging';

export interface SmtpProgress extends StepState<SmtpStep> {
  recoveryId: string;
  source?: SecretSource['kind'];
  backupId?: string;
  compensations: Compensation[];
  error?: string;
}
export const progress = defineQuery<SmtpProgress>('progress');

export async function recoverSmtpCredentials(raw?: RecoverSmtpInput): Promise<SmtpRecoveryResult> {
  const info = workflowInfo();
  const recoveryId = `smtp-${shortHash(`${info.workflowId}/${info.runId}`)}`;
  const state: SmtpProgress = { recoveryId, step: 'validating input', completed: [], compensations: [] };
  setHandler(progress, () => state);
  describeRun(raw);
  const { step, failedAt, done } = steps<SmtpStep>(state);
  showStep('validating input');
  let input: ReturnType<typeof RecoverSmtpInput.parse> = { newHost: {}, secretSource: 'auto', backupId: 'latest', reason: '(input rejected)' };
  let source: SecretSource | undefined;
  let openedHere: string | undefined;
  let changed = false;
  try {
    input = parseWorkflowInput('recoverSmtpCredentials', RecoverSmtpInput, raw);
    const asChild = !!input.openedSource;
    const configBackupId = input.configBackupId ?? recoveryId;
    source = input.openedSource;
    if (!source) {
      source = await step('openSecretSource', async () => {
        const choice = await chooseSource(input.secretSource);
        if (!choice.useBackup) return { kind: 'live' } as const;
        openedHere = `staging-${recoveryId}`;
        return openBackupSource(input.backupId, openedHere);
      });
    }
    state.source = source.kind;
    if (source.kind === 'backup') state.backupId = source.backupId;
    const src = source;
    const { hops } = await step('validateDecryptionPath', () => summarized(validateDecryptionPath, `Validate the SMTP credential decryption path (${src.kind})`, { source: src }));
    await step('keepMailConfig', () => keepMailConfig({ host: input.newHost, migrationId: configBackupId, source: src }));
    changed = !asChild; // as a child, migrateVps owns the compensation of the mail configuration
    const r = await step('reconfigureMailHost', () => summarized(reconfigureMailHost, 'Write the recovered relay and mailbox credentials to the mail host', { host: input.newHost, source: src }));
    const login = await step('verifyWebmailLogin', () => summarized(verifyWebmailLogin, 'Webmail and IMAP login with the recovered mailbox credentials', { host: input.newHost, source: src }));
    const opened = openedHere;
    if (opened) await step('teardownStaging', () => closeSecretSource(undefined, opened));
    openedHere = undefined;
    done();
    return {
      source: src.kind,
      ...(src.kind === 'backup' ? { backupId: src.backupId } : {}),
      hops,
      relay: r.relay,
      mailboxes: r.mailboxes,
      applied: `${r.adapter}: ${r.applied}`,
      webmail: login.webmail,
      imap: login.imap,
    };
  } catch (err) {
    const failed = failedAt() ?? 'validateDecryptionPath';
    await CancellationScope.nonCancellable(async () => {
      if (changed && source) {
        const c = await restoreMailConfig({ host: input.newHost, migrationId: input.configBackupId ?? recoveryId, source }).then(
          (x) => ({ step: 'reconfigureMailHost', what: 'previous mail configuration', undone: true, detail: `restored ${x.restored.join(', ') || 'nothing'}; ${x.applied}` }),
          (e: Error) => ({ step: 'reconfigureMailHost', what: 'previous mail configuration', undone: false, detail: `could not restore: ${e.message}` }),
        );
        state.compensations.push(c);
      }
      if (openedHere) await closeSecretSource(undefined, openedHere).catch(() => undefined);
    });
    // As migrateVps's child: the parent compensates and sends the one alert; just fail with the step.
    if (input.openedSource) {
      const f = describeFailure(err);
      if (!f || f.cancelled) throw err;
      throw ApplicationFailure.create({ type: f.errorType, message: `${failed}: ${f.message}`, nonRetryable: true });
    }
    const undone = state.compensations.map((c) => `${c.what}: ${c.undone ? 'undone' : 'NOT undone'} (${c.detail})`).join('; ');
    return failRunbook(err, {
      failedStep: failed,
      state,
      alert: { workflow: 'recoverSmtpCredentials', subject: `SMTP credential recovery ${recoveryId}`, details: () => ({ source: state.source ?? input.secretSource, undone: undone || 'nothing was changed' }) },
      failureMessage: (f) => `SMTP credential recovery ${recoveryId} failed at ${failed}: ${f.message}${undone ? `; undone: ${undone}` : '; nothing was changed on the host'}`,
    });
  }
}
