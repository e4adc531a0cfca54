// What each run is for, in one line and a few details, rendered from its input: the CLI and the
// schedules set it as the run's static summary and details when they start a workflow (stored in
// the workflow's user metadata as payloads, which the codec encrypts like any payload), and every
// workflow sets it as its current details itself (workflows/helpers.ts describeRun), so a run
// started from the Web UI with `{}` says the same. Never a secret: workflow kinds, backup ids,
// targets, reasons, names. Workflow-safe (no Node imports): the workflows import it.
import type { AlertDeliveryTestInput } from './alertTest';
import type { BackupInput } from './backup';
import type { FailoverDrillInput } from './ha';
import type { FindingInput } from './drills';
import type { DrDrillInput } from './drillRun';
import type { HealthCheckInput } from './health';
import type { MonitorInput } from './monitor';
import type { RestoreInput } from './restore';
import type { BreachInput } from './incident';
import type { RotateInput, SealDrillInput } from './rotation';
import type { UnsealRotationInput } from './unsealKeys';
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
    case 'failoverDrill': {
      const d = (input ?? {}) as FailoverDrillInput;
      const targets = d.targets ?? ['vault'];
      const faults = d.faults ?? ['kill-leader', 'stop-node', 'planned'];
      return {
        staticSummary: line(`Failover drill: ${targets.join(' + ')}, ${faults.join(', ')} × ${d.rounds ?? 1}${d.reason ? ` (${d.reason})` : ''}`),
        staticDetails: '**Runbook**: docs/runbooks/ha-failover.md\n\nInjects real faults into the HA cluster (one node at a time) and heals them; refuses to start unless the cluster is fully healthy.',
      };
    }
    case 'breachResponse': {
      const b = (input ?? {}) as BreachInput;
      const summary = `${b.training ? '[TRAINING] ' : ''}Incident (${b.severity ?? 'sev2'}, ${(b.scope ?? ['vault']).join(', ')}): ${line(b.summary ?? 'declared')}`;
      const details = [
        '**Runbook**: docs/runbooks/breach-response.md',
        ...(b.declaredBy ? [`**Declared by**: ${line(b.declaredBy)}`] : []),
        ...(b.training ? ['**TRAINING**: notices go to the training inbox; nothing is sealed.'] : []),
        'Acknowledge with `vaultdr incident ack <workflow id> --who NAME`; status with `vaultdr incident status <workflow id>`.',
      ];
      return { staticSummary: line(summary), staticDetails: details.join('\n\n') };
    }
    case 'rotateCredential': {
      const r = (input ?? {}) as RotateInput;
      const what = `${r.credentialClass ?? 'the default credential class'}${r.scope ? ` (${line(r.scope)})` : ''}`;
      return {
        staticSummary: line(`${r.training ? 'TRAINING: ' : ''}Emergency rotation of ${what}${r.incidentId ? ` for incident ${r.incidentId}` : ''}`),
        staticDetails: '**Runbook**: docs/runbooks/credential-rotation.md\n\nThird-party secrets: confirm with `vaultdr rotate confirm <workflow id> --who NAME --old-revoked`.',
      };
    }
    case 'sealUnsealDrill': {
      const d = (input ?? {}) as SealDrillInput;
      return {
        staticSummary: `${d.training ? 'TRAINING: ' : ''}Seal/unseal drill on ${d.target === 'ha' ? "the HA cluster (standbys stopped, the active node sealed; the cluster's own threshold)" : `a throwaway OpenBao (${d.threshold ?? 2} of ${d.shares ?? 3} shares)`}`,
        staticDetails: '**Runbook**: docs/runbooks/unseal-key-rotation.md\n\nCustodians submit shares with `vaultdr keys submit-share <workflow id> SHARE_FILE`.',
      };
    }
    case 'rotateUnsealKeys': {
      const u = (input ?? {}) as UnsealRotationInput;
      return {
        staticSummary: `${u.training ? 'TRAINING: ' : ''}Unseal-key rotation ceremony (${u.threshold ?? 2} of ${u.shares ?? 'one share per custodian'})`,
        staticDetails: '**Runbook**: docs/runbooks/unseal-key-rotation.md\n\nCustodians: `vaultdr keys rotate-submit`, then `vaultdr keys rotate-verify`, then `vaultdr keys submit-share <workflow id> SHARE.asc --pgp-key KEY`.',
      };
    }
    case 'drillFinding': {
      const f = (input ?? {}) as FindingInput;
      return {
        staticSummary: line(`Drill finding${f.severity ? ` (${f.severity})` : ''}: ${f.title ?? 'recorded by hand'}`),
        staticDetails: [`**Runbook**: docs/runbooks/dr-drills.md`, ...(f.scenario ? [`**Scenario**: ${f.scenario}`] : []), ...(f.dueDate ? [`**Due**: ${f.dueDate}`] : []), 'Assign with the `assign` update, resolve with `resolve` (evidence required).'].join('\n\n'),
      };
    }
    case 'drDrill': {
      const d = (input ?? {}) as DrDrillInput;
      const scenario = d.scenario ?? 'vault-node-failure';
      const mode = d.mode ?? 'automated';
      return {
        staticSummary: line(`DR drill: ${scenario} (${mode})${d.reason ? ` (${d.reason})` : ''}`),
        staticDetails: [
          '**Runbook**: docs/runbooks/dr-drills.md',
          `**Scenario**: ${scenario} (docs/drills/scenarios.md)`,
          ...(d.facilitator ? [`**Facilitator**: ${line(d.facilitator)}`] : []),
          'Injects a real fault into a target marked drillable, and always reverts it.',
          ...(mode === 'assisted' ? ['Confirm each step with `vaultdr drill confirm <workflow id> <step> --by NAME`; abort with `vaultdr drill abort <workflow id> --by NAME --reason TEXT`.'] : []),
        ].join('\n\n'),
      };
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
