// `vaultdr monitor ...` (the long-running vaultHealthMonitor) and `vaultdr alerts ...`
// (alertDeliveryTest and its ack signal).
import { Command, Option } from 'commander';
import { WithStartWorkflowOperation, WorkflowNotFoundError, WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import type { Workflow } from '@temporalio/common';
import { CHANNELS, SEVERITIES, type ChannelName, type Severity } from '../common/alerts';
import type { AlertDeliveryTestInput, DeliveryReport } from '../common/alertTest';
import { MonitorInput } from '../common/monitor';
import { describeIssues } from '../common/validate';
import type { ConfigureResult, MonitorSettings, MonitorStatus } from '../workflows/monitoring/vaultHealthMonitor';
import type { Config } from '../infra/config';
import type { CliContext } from './backupCommands';
import { connectClient } from './connect';
import { staticMetadata } from '../common/summaries';
import { startWorkflow } from './workflows';

/** One monitor per task queue (i.e. per installation): a fixed id, started if absent. "vault-dr-health-monitor" by default. */
export const monitorWorkflowId = (cfg: Config) => `${cfg.temporal.taskQueue}-health-monitor`;


async function isRunning(handle: WorkflowHandle): Promise<boolean> {
  try {
    return (await handle.describe()).status.name === 'RUNNING';
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return false;
    throw err;
  }
}

function renderDelivery(r: DeliveryReport): string {
  const lines = [`alert delivery test ${r.token} (confirm by ${r.confirm}): ${r.ok ? 'ALL CONFIRMED' : `${r.unconfirmed.length} NOT CONFIRMED`}`];
  for (const row of r.rows) lines.push(`  ${row.severity.padEnd(8)} ${row.channel.padEnd(9)} ${row.confirmed ? 'confirmed' : row.sent ? 'UNCONFIRMED' : 'NOT SENT'}  ${row.confirmed ? row.confirmDetail : row.sent ? row.confirmDetail : row.sendDetail}`);
  return lines.join('\n');
}

export function registerMonitorCommands(program: Command, ctx: CliContext): void {
  const positive = (flag: string) => (v: string) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) ctx.fail(`${flag}: expected a positive number, got "${v}"`, 2);
    return n;
  };
  const monitor = program.command('monitor').description('the long-running health monitor (vaultHealthMonitor)');

  monitor
    .command('start')
    .description('start vaultHealthMonitor as workflow <task queue>-health-monitor; on a running monitor, options given are applied to it (its open alerts are kept)')
    .option('--interval <seconds>', 'seconds between checks', positive('--interval'))
    .option('--expected-peers <n>', 'raft voters expected', positive('--expected-peers'))
    .option('--backup-max-age-hours <h>', 'newest verified backup older than this alerts', positive('--backup-max-age-hours'))
    .option('--validation-max-age-days <d>', 'newest successful restore validation older than this alerts', positive('--validation-max-age-days'))
    .action(async (opts: { interval?: number; expectedPeers?: number; backupMaxAgeHours?: number; validationMaxAgeDays?: number }, cmd: Command) => {
      const cfg = ctx.cfgOf(cmd);
      const input: MonitorInput = {
        ...(opts.interval ? { intervalSeconds: opts.interval } : {}),
        ...(opts.expectedPeers ? { expectedRaftPeers: opts.expectedPeers } : {}),
        ...(opts.backupMaxAgeHours ? { backupMaxAgeHours: opts.backupMaxAgeHours } : {}),
        ...(opts.validationMaxAgeDays ? { validationMaxAgeDays: opts.validationMaxAgeDays } : {}),
      };
      // The same schema the workflow applies: a bad value is refused here before anything starts.
      const pre = MonitorInput.safeParse(input);
      if (!pre.success) ctx.fail(`settings rejected: configure: ${describeIssues(pre.error.issues.slice(0, 3))}`, 2);
      const client = await connectClient(cfg);
      const workflowId = monitorWorkflowId(cfg);
      try {
        const running = await isRunning(client.workflow.getHandle(workflowId));
        // USE_EXISTING: two operators starting it at once still get one monitor.
        const start = { taskQueue: cfg.temporal.taskQueue, workflowId, args: [input] as [MonitorInput], workflowIdConflictPolicy: 'USE_EXISTING' as const, ...staticMetadata('vaultHealthMonitor', input) };
        let handle: WorkflowHandle;
        let configured: ConfigureResult | undefined;
        if (Object.keys(input).length === 0) {
          handle = await client.workflow.start('vaultHealthMonitor', start);
        } else {
          // Options: update-with-start, so the running monitor's validator answers (accepted, or
          // rejected with its message) instead of a signal nobody hears back from.
          const startWorkflowOperation = new WithStartWorkflowOperation('vaultHealthMonitor', start);
          try {
            configured = await client.workflow.executeUpdateWithStart<Workflow, ConfigureResult, [Partial<MonitorSettings>]>('configure', { args: [input as Partial<MonitorSettings>], startWorkflowOperation });
          } catch (err) {
            if (err instanceof WorkflowUpdateFailedError) ctx.fail(`settings rejected: ${err.cause?.message ?? err.message}`, 1);
            throw err;
          }
          handle = await startWorkflowOperation.workflowHandle();
        }
        const desc = await handle.describe();
        const value = { workflowId, runId: desc.runId, status: desc.status.name, startedNow: !running, ...(configured ? { settingsAccepted: input, changed: configured.changed, settings: configured.settings } : {}) };
        ctx.out(ctx.json(cmd), value, () =>
          `vaultHealthMonitor ${workflowId}: ${value.startedNow ? 'started' : 'already running'} (run ${value.runId})` +
          (configured ? `\nsettings accepted: ${configured.changed.length ? configured.changed.join(', ') : 'no change'}` : ''),
        );
      } finally {
        await client.connection.close();
      }
    });

  monitor
    .command('status')
    .description('open alerts and the last check of the running monitor')
    .action(async (_opts: unknown, cmd: Command) => {
      const cfg = ctx.cfgOf(cmd);
      const client = await connectClient(cfg);
      try {
        const handle = client.workflow.getHandle(monitorWorkflowId(cfg));
        const running = await isRunning(handle);
        if (!running) ctx.fail(`no monitor is running; start it with "vaultdr monitor start"`);
        const s = await handle.query<MonitorStatus>('status');
        ctx.out(ctx.json(cmd), s, () => {
          const open = Object.entries(s.open);
          const lines = [`checks: ${s.checks}, last at ${s.lastCheckAt ?? 'never'}${s.lastCheckError ? ` (check failed: ${s.lastCheckError})` : ''}`];
          if (s.settings) lines.push(`settings: every ${s.settings.intervalSeconds} s, ${s.settings.expectedRaftPeers} raft voter(s), backup max age ${s.settings.backupMaxAgeHours} h, validation max age ${s.settings.validationMaxAgeDays} d`);
          for (const l of s.log.filter((x) => x.key === 'configure').slice(-3)) lines.push(`  ${l.at} ${l.event}: ${l.detail}`);
          lines.push(open.length ? `open alerts (${open.length}):` : 'no open alerts');
          for (const [k, a] of open) lines.push(`  ${a.severity.padEnd(8)} ${k.padEnd(32)} since ${a.since}${a.delivered ? '' : '  (NOT YET DELIVERED)'}  ${a.summary}`);
          return lines.join('\n');
        });
        if (Object.keys(s.open).length) process.exitCode = 3;
      } finally {
        await client.connection.close();
      }
    });

  monitor
    .command('check-now')
    .description('ask the running monitor to check now instead of at its next interval')
    .action(async (_opts: unknown, cmd: Command) => {
      const cfg = ctx.cfgOf(cmd);
      const client = await connectClient(cfg);
      try {
        await client.workflow.getHandle(monitorWorkflowId(cfg)).signal('checkNow');
        ctx.out(ctx.json(cmd), { signalled: monitorWorkflowId(cfg) }, () => `asked ${monitorWorkflowId(cfg)} to check now`);
      } finally {
        await client.connection.close();
      }
    });

  const alerts = program.command('alerts').description('alert channels: delivery tests and acknowledgements');

  alerts
    .command('test')
    .description('send a test alert of every severity through every channel and confirm receipt (alertDeliveryTest)')
    .addOption(new Option('--confirm <how>', 'ack: wait for `vaultdr alerts ack` per channel; inbox: read the configured test inboxes').choices(['ack', 'inbox']).default('ack'))
    .addOption(new Option('--severity <s...>', 'only these severities').choices([...SEVERITIES]))
    .addOption(new Option('--channel <c...>', 'only these channels').choices([...CHANNELS]))
    .option('--timeout <seconds>', 'how long to wait for confirmations', positive('--timeout'))
    .option('--no-wait', 'print the workflow id and return')
    .action(async (opts: { confirm: 'ack' | 'inbox'; severity?: Severity[]; channel?: ChannelName[]; timeout?: number; wait: boolean }, cmd: Command) => {
      const cfg = ctx.cfgOf(cmd);
      const input: AlertDeliveryTestInput = {
        confirm: opts.confirm,
        ...(opts.severity ? { severities: opts.severity as never } : {}),
        ...(opts.channel ? { channels: opts.channel as never } : {}),
        ...(opts.timeout ? { ackTimeoutSeconds: Math.ceil(opts.timeout) } : {}),
      };
      if (!opts.wait || opts.confirm === 'ack') {
        const { workflowId } = (await startWorkflow(cfg, 'alertDeliveryTest', input, { wait: false })) as unknown as { workflowId: string };
        ctx.out(ctx.json(cmd), { workflowId }, () =>
          `started ${workflowId}${opts.confirm === 'ack' ? `\nconfirm each channel that received the test alerts:  vaultdr alerts ack ${workflowId} <email|slack|pagerduty> --by <you>\nresult:  vaultdr workflows list --type alertDeliveryTest` : ''}`,
        );
        return;
      }
      const r = await startWorkflow(cfg, 'alertDeliveryTest', input, { wait: true });
      ctx.out(ctx.json(cmd), r, () => renderDelivery(r));
      if (!r.ok) process.exitCode = 3;
    });

  alerts
    .command('ack')
    .description('confirm that a channel received the test alerts of a running alertDeliveryTest')
    .argument('<workflowId>', 'the alertDeliveryTest workflow id')
    .addArgument(new Command().createArgument('<channel>', 'the channel that received them').choices([...CHANNELS]))
    .addOption(new Option('--severity <s>', 'only this severity (default: all)').choices([...SEVERITIES]))
    .option('--by <name>', 'who confirms (recorded in the report)')
    .action(async (workflowId: string, channel: ChannelName, opts: { severity?: Severity; by?: string }, cmd: Command) => {
      const cfg = ctx.cfgOf(cmd);
      const client = await connectClient(cfg);
      try {
        const h = client.workflow.getHandle(workflowId);
        await h.signal('ack', { channel, ...(opts.severity ? { severity: opts.severity } : {}), ...(opts.by ? { by: opts.by } : {}) });
        const r = await h.query<DeliveryReport>('report');
        ctx.out(ctx.json(cmd), r, () => renderDelivery(r));
      } finally {
        await client.connection.close();
      }
    });
}
