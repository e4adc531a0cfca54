// `node lib/bench/haDrill.js [--rounds 5] [--targets vault,postgres] [--faults kill-leader]`: the
// failoverDrill workflow itself, end to end on the HA harness (npm run ha:up) and the local stack,
// with an in-process worker on a queue of its own: the numbers a scheduled drill would report
// (writer through the one HAProxy, fault, gap to the first acknowledged write, every acknowledged
// write read back, node healed before the next round). Results: bench/results/ha-drill.{json,md}.
// Nothing is asserted; the numbers are reported.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DefaultLogger, Runtime, bundleWorkflowCode } from '@temporalio/worker';
import { connectClient } from '../client/connect';
import type { FailoverDrillResult } from '../common/ha';
import { loadConfig } from '../infra/config';
import { FAILURE_CONVERTER_PATH } from '../infra/temporal/codec';
import { renderDrillMarkdown } from '../infra/ha/report';
import { HAPROXY_VAULT_ADDR } from '../stack/ha/haproxy';
import { haUp } from '../stack/ha/index';
import { monitorFile } from '../stack/ha/postgres';
import { haDir, PROJECT_ROOT } from '../stack/ha/proc';
import { stackDir, stackUp } from '../stack/stack';
import { buildWorker, workflowsPath } from '../workers/worker';

const arg = (name: string, dflt: string) => (process.argv.includes(`--${name}`) ? process.argv[process.argv.indexOf(`--${name}`) + 1]! : dflt);

async function main(): Promise<void> {
  const rounds = Number(arg('rounds', '5'));
  const targets = arg('targets', 'vault,postgres').split(',');
  const faults = arg('faults', 'kill-leader').split(',');
  await stackUp();
  await haUp((l) => console.log(`ha: ${l}`));
  const base = loadConfig({ file: path.join(stackDir(), 'vaultdr.json'), env: {} });
  const taskQueue = `bench-ha-drill-${process.pid}`;
  const cfg = { ...base, temporal: { ...base.temporal, taskQueue }, ha: { harnessDir: haDir(), vaultAddress: HAPROXY_VAULT_ADDR, postgresMonitorFile: monitorFile() } };
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const bundle = await bundleWorkflowCode({ workflowsPath: workflowsPath(), failureConverterPath: FAILURE_CONVERTER_PATH, logger: new DefaultLogger('ERROR') });
  const built = await buildWorker(cfg, { workflowBundle: bundle });
  const client = await connectClient(cfg);
  try {
    const result = await built.runUntil(
      (async () => {
        const h = await client.workflow.start('failoverDrill', { taskQueue, workflowId: `bench-ha-drill-${Date.now()}`, args: [{ targets, faults, rounds, reason: `bench/haDrill.ts on ${os.hostname()}` } as never] });
        console.log(`failoverDrill ${h.workflowId}: ${targets.join(',')} × ${faults.join(',')} × ${rounds} rounds`);
        return (await h.result()) as FailoverDrillResult;
      })(),
    );
    const out = path.join(PROJECT_ROOT, 'bench', 'results');
    fs.writeFileSync(path.join(out, 'ha-drill.json'), JSON.stringify(result, null, 2) + '\n');
    const md = `${renderDrillMarkdown(result, `bench/haDrill.ts --rounds ${rounds} --targets ${targets.join(',')} --faults ${faults.join(',')}`)}
Machine: ${os.cpus().length} CPU(s), ${os.cpus()[0]?.model ?? '?'}, load average ${os.loadavg().map((x) => x.toFixed(1)).join(' / ')} at the end (shared with other jobs).
`;
    fs.writeFileSync(path.join(out, 'ha-drill.md'), md);
    console.log(md);
  } finally {
    await client.connection.close();
    await built.connection.close();
  }
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    console.error(err);
    process.exit(1);
  },
);
