// `vaultdr drill failover` — starts the failoverDrill workflow (docs/runbooks/ha-failover.md) and,
// unless --no-wait, waits for its result and prints the gap per target and fault.
import { Command, Option } from 'commander';
import { FailoverDrillInput, HA_FAULTS, HA_TARGETS, type FailoverDrillResult } from '../common/ha';
import type { CliContext } from './backupCommands';
import { startWorkflow } from './workflows';

const list = (v: string) => v.split(',').map((x) => x.trim()).filter(Boolean);

export function registerDrillCommands(program: Command, ctx: CliContext): void {
  const drill = program.command('drill').description('resilience drills');
  drill
    .command('failover')
    .description('measured failover drill of the HA cluster(s): inject each fault, time the first successful write, check no acknowledged write is lost, heal')
    .addOption(new Option('--targets <list>', `comma-separated: ${HA_TARGETS.join(', ')}`).default('vault'))
    .addOption(new Option('--faults <list>', `comma-separated: ${HA_FAULTS.join(', ')}`).default('kill-leader,stop-node,planned'))
    .option('--rounds <n>', 'rounds per target and fault', '1')
    .option('--reason <text>', 'why the drill runs (in the report)')
    .option('--no-wait', 'start and print the workflow id only')
    .action(async (opts: { targets: string; faults: string; rounds: string; reason?: string; wait: boolean }, cmd: Command) => {
      const cfg = ctx.cfgOf(cmd);
      const input = { targets: list(opts.targets), faults: list(opts.faults), rounds: Number(opts.rounds), ...(opts.reason ? { reason: opts.reason } : {}) } as FailoverDrillInput;
      // The workflow validates too; checking here gives the terminal the same message without a run.
      const parsed = FailoverDrillInput.safeParse(input);
      if (!parsed.success) ctx.fail(`drill failover: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`, 2);
      const r = (await startWorkflow(cfg, 'failoverDrill', input, { wait: opts.wait })) as FailoverDrillResult | { workflowId: string };
      ctx.out(ctx.json(cmd), r, () => {
        if (!('stats' in r)) return `started failoverDrill ${r.workflowId}`;
        const lines = [`failover drill ${r.drillId}: ${r.rounds.length} round(s), lost acknowledged writes: ${r.lostWrites}`];
        for (const s of r.stats) lines.push(`  ${s.target.padEnd(9)} ${s.fault.padEnd(14)} rounds ${s.rounds}  gap p50 ${(s.p50Ms / 1000).toFixed(2)}s  p95 ${(s.p95Ms / 1000).toFixed(2)}s  max ${(s.maxMs / 1000).toFixed(2)}s`);
        if (r.reportMarkdownKey) lines.push(`report: s3://${cfg.s3.bucket}/${r.reportMarkdownKey}`);
        return lines.join('\n');
      });
    });
}
