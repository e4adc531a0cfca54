// Temporal Schedules vault-dr owns, applied idempotently by `vaultdr schedules apply`.
import { ScheduleOverlapPolicy, type Client, type ScheduleOptions } from '@temporalio/client';
import type { Config } from '../infra/config';
import { staticMetadata } from '../common/summaries';
import { SCENARIO_IDS, SCENARIOS } from '../common/drills';
import { AUTOMATED_SCENARIOS } from '../common/drillRun';

export interface ScheduleSpecDef {
  scheduleId: string;
  description: string;
  options: (cfg: Config) => ScheduleOptions;
}

export const SCHEDULES: ScheduleSpecDef[] = [
  {
    scheduleId: 'vault-dr-backup-daily',
    description: 'backupVault every day at 02:00 UTC',
    options: (cfg) => ({
      scheduleId: 'vault-dr-backup-daily',
      spec: { cronExpressions: ['0 2 * * *'], timezone: 'UTC' },
      action: { type: 'startWorkflow', workflowType: 'backupVault', taskQueue: cfg.temporal.taskQueue, workflowId: 'backupVault-scheduled', args: [{ trigger: 'schedule' }], workflowExecutionTimeout: '6h', ...staticMetadata('backupVault', { trigger: 'schedule' }) },
      state: { note: 'vault-dr: daily backup of OpenBao (docs/runbooks/backup.md); pause with a note saying why' },
      // A backup still running at the next fire time is not doubled; a missed fire within 6 h still runs.
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '6h', pauseOnFailure: false },
      memo: { owner: 'vault-dr' },
    }),
  },
  {
    scheduleId: 'vault-dr-restore-validation-weekly',
    description: 'restoreVault of the latest verified backup into staging, Sundays 03:00 UTC',
    options: (cfg) => ({
      scheduleId: 'vault-dr-restore-validation-weekly',
      spec: { cronExpressions: ['0 3 * * 0'], timezone: 'UTC' },
      action: { type: 'startWorkflow', workflowType: 'restoreVault', taskQueue: cfg.temporal.taskQueue, workflowId: 'restoreVault-weekly', args: [{ backupId: 'latest', target: 'staging', reason: 'weekly validation' }], workflowExecutionTimeout: '6h', ...staticMetadata('restoreVault', { backupId: 'latest', target: 'staging', reason: 'weekly validation' }) },
      state: { note: 'vault-dr: weekly restore validation into staging (docs/runbooks/restore.md); pause with a note saying why' },
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1d', pauseOnFailure: false },
      memo: { owner: 'vault-dr' },
    }),
  },
  // One quarterly DR drill per scenario (docs/runbooks/dr-drills.md#cadence). A scenario drDrill
  // does not automate yet, or whose catalogue entry says so, is created paused with a note saying
  // why; apply never changes the paused state of an existing schedule (an operator's pause stays).
  ...SCENARIO_IDS.map((id): ScheduleSpecDef => {
    const sc = SCENARIOS[id];
    const scheduleId = `vault-dr-drill-${id}`;
    const args = { scenario: id, mode: 'automated' as const, reason: 'quarterly drill (schedule)' };
    const running = sc.schedule.enabledByDefault && AUTOMATED_SCENARIOS.includes(id);
    const why = !AUTOMATED_SCENARIOS.includes(id) ? 'drDrill does not automate this scenario yet' : `its prerequisites must exist first: ${sc.prerequisites.join('; ')}`;
    return {
      scheduleId,
      description: `drDrill ${id}, quarterly (${sc.schedule.cron} UTC)${running ? '' : ', created paused'}`,
      options: (cfg) => ({
        scheduleId,
        spec: { cronExpressions: [sc.schedule.cron], timezone: 'UTC' },
        action: { type: 'startWorkflow', workflowType: 'drDrill', taskQueue: cfg.temporal.taskQueue, workflowId: `drDrill-${id}-scheduled`, args: [args], workflowExecutionTimeout: '12h', ...staticMetadata('drDrill', args) },
        state: running
          ? { note: `vault-dr: quarterly DR drill ${id} (docs/runbooks/dr-drills.md); pause with a note saying why` }
          : { paused: true, note: `vault-dr: quarterly DR drill ${id}, created paused: ${why} (docs/runbooks/dr-drills.md#cadence)` },
        // A drill still running is not doubled; a missed quarter is not caught up days later.
        policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1d', pauseOnFailure: false },
        memo: { owner: 'vault-dr' },
      }),
    };
  }),
];

export async function applySchedules(client: Client, cfg: Config): Promise<{ scheduleId: string; action: 'created' | 'updated' }[]> {
  const out: { scheduleId: string; action: 'created' | 'updated' }[] = [];
  for (const def of SCHEDULES) {
    const opts = def.options(cfg);
    try {
      await client.schedule.create(opts);
      out.push({ scheduleId: def.scheduleId, action: 'created' });
    } catch (err) {
      if ((err as Error).name !== 'ScheduleAlreadyRunning') throw err;
      await client.schedule.getHandle(def.scheduleId).update((prev) => ({ ...prev, spec: opts.spec, action: opts.action as never, policies: { ...prev.policies, ...opts.policies } }));
      out.push({ scheduleId: def.scheduleId, action: 'updated' });
    }
  }
  return out;
}
