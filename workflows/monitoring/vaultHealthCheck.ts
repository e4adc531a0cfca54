// vaultHealthCheck — one look at everything vault-dr depends on: OpenBao seal/leader/raft peers,
// the backup bucket, the SMTP relay and, where configured, the HA PostgreSQL cluster (primary,
// replicas, replication lag). Reads like docs/runbooks/health-check.md.
import { defineQuery, patched, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { VaultActivities } from '../../activities/monitoring/vault';
import type { ObjectStoreActivities } from '../../activities/monitoring/objectStore';
import type { MailActivities } from '../../activities/monitoring/mail';
import type { PostgresHaActivities } from '../../activities/monitoring/postgres';
import { HealthCheckInput, worstStatus, type HealthReport } from '../../common/health';
import { parseWorkflowInput } from '../../common/validate';
import { SHORT_IO } from '../profiles';
import { showStep, describeRun } from '../helpers';
import { activityQueue } from '../queues';

const { checkVaultHealth, checkObjectStore, checkPostgresHa } = proxyActivities<VaultActivities & ObjectStoreActivities & PostgresHaActivities>({ ...SHORT_IO, taskQueue: activityQueue('backup') });
const { checkMailRelay } = proxyActivities<MailActivities>({ ...SHORT_IO, taskQueue: activityQueue('notify') });

export interface HealthCheckProgress {
  step: 'validating input' | 'checking vault' | 'checking object store' | 'checking mail relay' | 'checking postgres' | 'done';
  completed: string[];
}
export const progress = defineQuery<HealthCheckProgress>('progress');

export async function vaultHealthCheck(rawInput?: HealthCheckInput): Promise<HealthReport> {
  describeRun(rawInput);
  const state: HealthCheckProgress = { step: 'validating input', completed: [] };
  const at = (step: HealthCheckProgress['step']) => {
    state.step = step;
    showStep(step);
  };
  at('validating input');
  setHandler(progress, () => state);
  const input = parseWorkflowInput('vaultHealthCheck', HealthCheckInput, rawInput);
  const report: HealthReport = { status: 'healthy', checkedAt: new Date(workflowInfo().startTime).toISOString() };

  if (input.checks.includes('vault')) {
    at('checking vault');
    report.vault = await checkVaultHealth({ expectedRaftPeers: input.expectedRaftPeers });
    state.completed.push('vault');
  }
  if (input.checks.includes('objectStore')) {
    at('checking object store');
    report.objectStore = await checkObjectStore();
    state.completed.push('objectStore');
  }
  if (input.checks.includes('mail')) {
    at('checking mail relay');
    report.mail = await checkMailRelay();
    state.completed.push('mail');
  }
  // Runs recorded before this check existed replay without it.
  if (input.checks.includes('postgres') && patched('health-postgres-ha')) {
    at('checking postgres');
    const pg = await checkPostgresHa();
    if (pg) report.postgres = pg;
    state.completed.push('postgres');
  }
  report.status = worstStatus([report.vault, report.objectStore, report.mail, report.postgres].flatMap((p) => (p ? [p.status] : [])));
  at('done');
  return report;
}
