// What each run is for, in one line and a few details, rendered from its input: the CLI and the
// schedules set it as the run's static summary and details when they start a workflow (stored in
// the workflow's user metadata as payloads, which the codec encrypts like any payload), and every
// workflow sets it as its current details itself (workflows/helpers.ts describeRun), so a run
// started from the Web UI with `{}` says the same. Never a secret: workflow kinds, backup ids,
// targets, reasons, names. Workflow-safe (no Node imports): the workflows import it.
import type { AlertDeliveryTestInput } from './alertTest';
import type { BackupInput } from './backup';
import type { HealthCheckInput } from './health';
import type { MonitorInput } from './monitor';
import type { RestoreInput } from './restore';
import type { MigrateInput, RecoverSmtpInput } from './migration';

export interface StaticMetadata {
  staticSummary: string;
  staticDetails?: string;
}

const line = (s: string) => s.replace(/\s+/g, ' ').trim().slice(0, 200);

/** The summary ("Production restore of 20261201T020000Z-ab12cd34, needs approval") and details of a run. */
export function staticMetadata(name: string, input: unknown): StaticMetadata {
  switch (name) {
    case 'restoreVault': {
      const r = (input ?? {}) as RestoreInput;
      const target = r.target ?? 'staging';
      const backup = r.backupId ?? 'latest';
      const summary = target === 'production' ? `Production restore of ${backup}, needs approval` : `Staging restore of ${backup === 'latest' ? 'the latest backup' : backup} (validation)`;
      const details = [
        `**Runbook**: docs/runbooks/restore.md`,
        `**Target**: ${target}`,
        `**Backup**: ${backup}`,
        ...(r.reason ? [`**Reason**: ${line(r.reason)}`] : []),
        ...(r.requestedBy ? [`**Requested by**: ${line(r.requestedBy)}`] : []),
        ...(target === 'production' ? [`Approve or refuse with \`vaultdr restore approve <workflow id> --who NAME --why REASON\` (someone other than the requester).`] : []),
      ];
      return { staticSummary: line(summary), staticDetails: details.join('\n\n') };
    }
    case 'backupVault': {
      const b = (input ?? {}) as BackupInput;
      return { staticSummary: `Vault backup (${b.trigger ?? 'manual'})${b.prune === false ? ', no retention' : ''}`, staticDetails: '**Runbook**: docs/runbooks/backup.md' };
    }
    case 'vaultHealthCheck': {
      const h = (input ?? {}) as HealthCheckInput;
      return { staticSummary: `Vault health check${h.checks ? ` (${h.checks.join(', ')})` : ''}` };
    }
    case 'vaultHealthMonitor': {
      const m = (input ?? {}) as MonitorInput;
      return { staticSummary: 'Vault health monitor (long-running)', staticDetails: `**Runbook**: docs/runbooks/monitoring.md${m.intervalSeconds ? `\n\nChecks every ${m.intervalSeconds} s.` : ''}` };
    }
    case 'alertDeliveryTest': {
      const a = (input ?? {}) as AlertDeliveryTestInput;
      return { staticSummary: `Alert delivery test (confirm by ${a.confirm ?? 'ack'})`, staticDetails: '**Runbook**: docs/runbooks/monitoring.md\n\nConfirm each channel with `vaultdr alerts ack <workflow id> <channel> --by NAME`.' };
    }
    case 'migrateVps': {
      const m = (input ?? {}) as MigrateInput;
      const host = m.newHost?.address ?? 'the configured new host';
      return {
        staticSummary: line(`VPS migration to ${host} (secrets: ${m.secretSource ?? 'auto'})${m.awaitCutover === false ? '' : ', needs cutover approval'}`),
        staticDetails: ['**Runbook**: docs/runbooks/vps-migration.md', ...(m.reason ? [`**Reason**: ${line(m.reason)}`] : []), 'Approve the cutover with `vaultdr migration approve-cutover <workflow id> --who NAME --why REASON`.'].join('\n\n'),
      };
    }
    case 'recoverSmtpCredentials': {
      const r = (input ?? {}) as RecoverSmtpInput;
      return { staticSummary: line(`SMTP credential recovery (secrets: ${r.secretSource ?? 'auto'})`), staticDetails: '**Runbook**: docs/runbooks/smtp-recovery.md' };
    }
    default:
      return { staticSummary: name };
  }
}
