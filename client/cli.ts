// `vaultdr` — the terminal face of vault-dr. Every command takes --config and --json; exit codes:
// 0 ok, 1 error (config, unreachable server, failed workflow), 2 usage, 3 checks ran but found problems.
import { Command, CommanderError, Option } from 'commander';
import { Connection } from '@temporalio/client';
import { loadConfig, type Config } from '../infra/config';
import { buildClients } from '../infra/clients';
import { createActivities } from '../activities';
import { HealthCheckInput, worstStatus, type HealthReport } from '../common/health';
import { connectClient } from './connect';
import { startWorkflow } from './workflows';
import { registerBackupCommands } from './backupCommands';
import { registerBucketCommands } from './bucketCommands';
import { registerRestoreCommands } from './restoreCommands';
import { registerMonitorCommands } from './monitorCommands';
import { registerDrillCommands } from './drillCommands';
import { registerIncidentCommands } from './incidentCommands';
import { registerEmergencyCommands } from './emergencyCommands';
import { registerMigrationCommands } from './migrationCommands';
import { temporalConnectionOptions } from '../infra/temporal/connection';

export const EXIT = { ok: 0, error: 1, usage: 2, problems: 3 } as const;

interface GlobalOpts {
  config?: string;
  json?: boolean;
}

class CliError extends Error {
  constructor(
    message: string,
    readonly code: number = EXIT.error,
  ) {
    super(message);
  }
}

function out(json: boolean | undefined, value: unknown, human: () => string): void {
  process.stdout.write(json ? JSON.stringify(value, null, 2) + '\n' : human() + '\n');
}

function renderHealth(r: HealthReport & { temporal?: { status: string; address: string; problems: string[] } }): string {
  const lines = [`overall: ${r.status.toUpperCase()}  (${r.checkedAt})`];
  if (r.temporal) lines.push(`temporal     ${r.temporal.status.padEnd(9)} ${r.temporal.address}`);
  if (r.vault) {
    const v = r.vault;
    const leader = v.raftPeers.find((p) => p.leader);
    lines.push(`vault        ${v.status.padEnd(9)} version ${v.version || '?'}, ${v.sealed ? 'SEALED' : 'unsealed'}, ${v.standby ? 'standby' : 'active'}, raft peers ${v.raftPeers.length}${leader ? ` (leader ${leader.nodeId})` : ''}`);
    if (v.autopilot) lines.push(`  autopilot  ${v.autopilot.healthy ? 'healthy' : 'UNHEALTHY'}, failure tolerance ${v.autopilot.failureTolerance}`);
    for (const n of v.nodes ?? []) lines.push(`  node       ${n.nodeId.padEnd(10)} ${n.status.padEnd(9)} ${n.healthy ? 'healthy' : 'UNHEALTHY'}  ${n.address}  last contact ${n.lastContact || '-'}`);
  }
  if (r.objectStore) lines.push(`object store ${r.objectStore.status.padEnd(9)} ${r.objectStore.endpoint} bucket ${r.objectStore.bucket}`);
  if (r.mail) lines.push(`mail relay   ${r.mail.status.padEnd(9)} ${r.mail.host}:${r.mail.port}`);
  if (r.postgres) {
    const p = r.postgres;
    lines.push(`postgres HA  ${p.status.padEnd(9)} primary ${p.primary ?? 'NONE'}, ${p.replicas.length}/${p.expectedReplicas} replicas streaming`);
    for (const x of p.replicas) lines.push(`  replica    ${x.name.padEnd(10)} ${x.sync ? 'sync ' : 'async'}  lag ${x.lagBytes} B`);
  }
  const problems = [r.temporal, r.vault, r.objectStore, r.mail, r.postgres].flatMap((p) => p?.problems ?? []);
  for (const p of problems) lines.push(`  problem: ${p}`);
  return lines.join('\n');
}

async function directHealth(cfg: Config, input: HealthCheckInput) {
  const parsed = HealthCheckInput.parse(input);
  const acts = createActivities(cfg, buildClients(cfg));
  const temporal = { status: 'healthy' as 'healthy' | 'unhealthy', address: cfg.temporal.address, problems: [] as string[] };
  try {
    const conn = await Connection.connect({ ...temporalConnectionOptions(cfg), connectTimeout: 3000 });
    await conn.healthService.check({});
    await conn.close();
  } catch (err) {
    temporal.status = 'unhealthy';
    temporal.problems.push(`Temporal at ${cfg.temporal.address} unreachable: ${(err as Error).message.split('\n')[0]}`);
  }
  const report: HealthReport & { temporal: typeof temporal } = { status: 'healthy', checkedAt: new Date().toISOString(), temporal };
  if (parsed.checks.includes('vault')) report.vault = await acts.checkVaultHealth({ expectedRaftPeers: parsed.expectedRaftPeers });
  if (parsed.checks.includes('objectStore')) report.objectStore = await acts.checkObjectStore();
  if (parsed.checks.includes('mail')) report.mail = await acts.checkMailRelay();
  if (parsed.checks.includes('postgres')) report.postgres = (await acts.checkPostgresHa()) ?? undefined;
  report.status = worstStatus([temporal.status, ...[report.vault, report.objectStore, report.mail, report.postgres].flatMap((p) => (p ? [p.status] : []))]);
  return report;
}

export function buildProgram(): Command {
  const program = new Command('vaultdr')
    .description('Keep a Vault / OpenBao installation recoverable: backups, restores, drills, alerts.')
    .option('-c, --config <file>', 'config file (default: $VAULTDR_CONFIG, else ./.stack/vaultdr.json when present)')
    .option('--json', 'machine-readable output')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  const cfgOf = (cmd: Command): Config => loadConfig({ file: (cmd.optsWithGlobals() as GlobalOpts).config });

  program
    .command('health')
    .description('check OpenBao (seal, leader, raft peers), the backup bucket, the SMTP relay and Temporal')
    .option('--workflow', 'run the vaultHealthCheck workflow on a worker instead of checking from this process')
    .option('--expected-peers <n>', 'raft voters expected', (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) throw new CliError(`--expected-peers: expected a positive integer, got "${v}"`, EXIT.usage);
      return n;
    })
    .action(async (opts: { workflow?: boolean; expectedPeers?: number }, cmd: Command) => {
      const g = cmd.optsWithGlobals() as GlobalOpts;
      const cfg = cfgOf(cmd);
      const input: HealthCheckInput = opts.expectedPeers ? { expectedRaftPeers: opts.expectedPeers } : {};
      const report = opts.workflow
        ? await startWorkflow(cfg, 'vaultHealthCheck', input, { wait: true })
        : await directHealth(cfg, input);
      out(g.json, report, () => renderHealth(report as HealthReport));
      if ((report as HealthReport).status !== 'healthy') process.exitCode = EXIT.problems;
    });

  const workflows = program.command('workflows').description('inspect vault-dr workflow runs');
  workflows
    .command('list')
    .description('list recent workflow executions (newest first)')
    .option('--type <workflowType>', 'only this workflow type, e.g. vaultHealthCheck')
    .addOption(new Option('--status <status>', 'only this status').choices(['Running', 'Completed', 'Failed', 'Canceled', 'Terminated', 'TimedOut', 'ContinuedAsNew']))
    .option('--limit <n>', 'at most n rows', '20')
    .action(async (opts: { type?: string; status?: string; limit: string }, cmd: Command) => {
      const g = cmd.optsWithGlobals() as GlobalOpts;
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 1) throw new CliError(`--limit: expected a positive integer, got "${opts.limit}"`, EXIT.usage);
      if (opts.type && !/^[A-Za-z0-9_]+$/.test(opts.type)) throw new CliError(`--type: not a workflow type name: "${opts.type}"`, EXIT.usage);
      const cfg = cfgOf(cmd);
      const client = await connectClient(cfg);
      const clauses = [`TaskQueue = '${cfg.temporal.taskQueue}'`];
      if (opts.type) clauses.push(`WorkflowType = '${opts.type}'`);
      if (opts.status) clauses.push(`ExecutionStatus = '${opts.status}'`);
      const rows: { workflowId: string; runId: string; type: string; status: string; startTime: string; closeTime?: string }[] = [];
      for await (const wf of client.workflow.list({ query: clauses.join(' AND ') })) {
        rows.push({ workflowId: wf.workflowId, runId: wf.runId, type: wf.type, status: wf.status.name, startTime: wf.startTime.toISOString(), closeTime: wf.closeTime?.toISOString() });
        if (rows.length >= limit) break;
      }
      await client.connection.close();
      out(g.json, rows, () =>
        rows.length === 0 ? 'no workflow executions' : rows.map((r) => `${r.startTime}  ${r.status.padEnd(10)} ${r.type.padEnd(20)} ${r.workflowId}`).join('\n'),
      );
    });
  const ctx = {
    cfgOf,
    json: (cmd: Command) => !!(cmd.optsWithGlobals() as GlobalOpts).json,
    out,
    fail: (message: string, code: number = EXIT.error): never => {
      throw new CliError(message, code);
    },
  };
  registerBackupCommands(program, ctx);
  registerBucketCommands(program, ctx);
  registerRestoreCommands(program, ctx);
  registerMonitorCommands(program, ctx);
  registerDrillCommands(program, ctx);
  registerIncidentCommands(program, ctx);
  registerEmergencyCommands(program, ctx);
  registerMigrationCommands(program, ctx);
  return program;
}

export async function runCli(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander already printed its one-line message; help/version are exit 0.
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    const e = err as Error & { code?: number };
    process.stderr.write(`vaultdr: ${e.message.split('\n')[0]}\n`);
    return e instanceof CliError ? e.code : EXIT.error;
  }
}

if (require.main === module) {
  void runCli(process.argv.slice(2)).then((code) => process.exit(code));
}
