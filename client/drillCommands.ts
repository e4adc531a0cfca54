// `vaultdr drill failover` — starts the failoverDrill workflow (docs/runbooks/ha-failover.md) and,
// unless --no-wait, waits for its result and prints the gap per target and fault.
import { Command, Option } from 'commander';
import { FailoverDrillInput, HA_FAULTS, HA_TARGETS, type FailoverDrillResult } from '../common/ha';
import type { CliContext } from './backupCommands';
import { startWorkflow } from './workflows';
import { connectClient } from './connect';
import { SCENARIO_IDS } from '../common/drills';
import { DRILL_RUN_PREFIX, DRILL_STEPS, DrDrillInput, type DrDrillReport, type DrDrillResult } from '../common/drillRun';
import { buildS3Client } from '../infra/clients';
import { getJsonObject, listAllKeys } from '../infra/store/objects';

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

  drill
    .command('run')
    .description(`DR drill of a catalogued scenario (docs/drills/scenarios.md): steady state, fault, detection, recovery, revert, report; scenarios: ${SCENARIO_IDS.join(', ')}`)
    .argument('[scenario]', 'the scenario', 'vault-node-failure')
    .option('--assisted', 'a facilitator confirms each step (vaultdr drill confirm) and may abort')
    .option('--facilitator <name>', 'who runs it (in the report)')
    .option('--reason <text>', 'why the drill runs (in the report)')
    .option('--no-wait', 'start and print the workflow id only')
    .action(async (scenario: string, opts: { assisted?: boolean; facilitator?: string; reason?: string; wait: boolean }, cmd: Command) => {
      const cfg = ctx.cfgOf(cmd);
      const input = { scenario, mode: opts.assisted ? 'assisted' : 'automated', ...(opts.facilitator ? { facilitator: opts.facilitator } : {}), ...(opts.reason ? { reason: opts.reason } : {}) } as DrDrillInput;
      const parsed = DrDrillInput.safeParse(input);
      if (!parsed.success) ctx.fail(`drill run: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`, 2);
      // An assisted drill waits for its facilitator: never block the terminal on it.
      const r = (await startWorkflow(cfg, 'drDrill', input, { wait: opts.wait && !opts.assisted })) as DrDrillResult | { workflowId: string };
      ctx.out(ctx.json(cmd), r, () => {
        if (!('outcome' in r)) return `started drDrill ${r.workflowId}${opts.assisted ? `\nconfirm each step: vaultdr drill confirm ${r.workflowId} <step> --by NAME` : ''}`;
        return [
          `drill ${r.drillId}: ${r.outcome}`,
          `  RTO ${r.rtoMs === undefined ? '-' : `${(r.rtoMs / 1000).toFixed(2)} s`}  detected ${r.detectMs === undefined ? 'no' : `${(r.detectMs / 1000).toFixed(1)} s`}  ${r.rpoMs !== undefined ? `RPO ${(r.rpoMs / 1000).toFixed(1)} s (fault − restored snapshot)` : `lost writes ${r.lostWrites ?? '-'}`}`,
          ...(r.findings.length ? [`  findings: ${r.findings.join(', ')}`] : []),
          ...(r.reportKeys ? [`  report: s3://${cfg.s3.bucket}/${r.reportKeys.markdown}`] : []),
        ].join('\n');
      });
    });
  const update = async (cmd: Command, id: string, name: 'confirmStep' | 'abort', arg: unknown) => {
    const client = await connectClient(ctx.cfgOf(cmd));
    try {
      const r = await client.workflow.getHandle(id).executeUpdate(name, { args: [arg] });
      ctx.out(ctx.json(cmd), r, () => `${name}: ${JSON.stringify(r)}`);
    } catch (err) {
      ctx.fail(`drill ${name}: ${(err as Error).message}`, 1);
    } finally {
      await client.connection.close();
    }
  };
  drill
    .command('confirm')
    .description(`assisted drill: confirm the step it waits for (${DRILL_STEPS.join(', ')})`)
    .argument('<workflowId>')
    .argument('<step>')
    .requiredOption('--by <name>', 'the facilitator')
    .action((id: string, step: string, opts: { by: string }, cmd: Command) => update(cmd, id, 'confirmStep', { step, by: opts.by }));
  drill
    .command('abort')
    .description('abort a drill: the fault is reverted and the report says why')
    .argument('<workflowId>')
    .requiredOption('--by <name>', 'who aborts')
    .requiredOption('--reason <text>', 'why')
    .action((id: string, opts: { by: string; reason: string }, cmd: Command) => update(cmd, id, 'abort', { by: opts.by, reason: opts.reason }));
  drill
    .command('reports')
    .description('DR drill reports in the bucket, newest first')
    .option('--limit <n>', 'at most this many', '20')
    .action(async (opts: { limit: string }, cmd: Command) => {
      const cfg = ctx.cfgOf(cmd);
      const s3 = buildS3Client(cfg.s3);
      const keys = (await listAllKeys(s3, cfg.s3.bucket, DRILL_RUN_PREFIX)).filter((k) => k.endsWith('/report.json'));
      const reports: DrDrillReport[] = [];
      for (const k of keys) {
        const r = await getJsonObject<DrDrillReport>(s3, cfg.s3.bucket, k);
        if (r) reports.push(r);
      }
      reports.sort((a, b) => b.startedAt.localeCompare(a.startedAt));
      const shown = reports.slice(0, Number(opts.limit) || 20);
      ctx.out(ctx.json(cmd), shown.map((r) => ({ drillId: r.drillId, scenario: r.scenario, outcome: r.outcome, startedAt: r.startedAt, rtoMs: r.rtoMs, detectMs: r.detectMs, lostWrites: r.lostWrites, findings: r.findings.length, markdown: `${DRILL_RUN_PREFIX}${r.drillId}/report.md` })), () =>
        shown.length
          ? shown.map((r) => `${r.startedAt}  ${r.scenario.padEnd(22)} ${r.outcome.padEnd(8)} RTO ${r.rtoMs === undefined ? '-' : `${(r.rtoMs / 1000).toFixed(2)}s`}  detect ${r.detectMs === undefined ? '-' : `${(r.detectMs / 1000).toFixed(1)}s`}  findings ${r.findings.length}  s3://${cfg.s3.bucket}/${DRILL_RUN_PREFIX}${r.drillId}/report.md`).join('\n')
          : 'no drill reports yet',
      );
    });
}
